package controller

import (
	"context"
	"errors"
	"fmt"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
)

// Local endpoints (`--local`) are Azure's separate namespace: `show`, `list` and every
// other command see the local ones only with --local, the managed ones only without it.
// Both live in one table of names, so a name is local or managed, never both.

// CheckNamespace returns EndpointNotFound when the endpoint exists in the other
// namespace than the request's (local or managed), saying which flag finds it. A
// missing endpoint is no error here: the operation itself reports it.
func (c *Controller) CheckNamespace(ctx context.Context, name string, local bool) error {
	ep, err := c.cfg.Store.GetEndpoint(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("endpoint %q: %w", name, err)
	}
	if ep.Local == local {
		return nil
	}
	msg := fmt.Sprintf("endpoint %q does not exist as a managed endpoint: %s exists as a local endpoint: add --local", name, name)
	if local {
		msg = fmt.Sprintf("endpoint %q does not exist as a local endpoint: %s exists as a managed endpoint: drop --local", name, name)
	}
	return &diag.Error{Code: diag.EndpointNotFound, Target: name, Message: msg}
}

// endpointExists is the EndpointAlreadyExists answer to creating an endpoint whose
// name is taken, naming the namespace that holds it.
func (c *Controller) endpointExists(ctx context.Context, name string, local bool) error {
	fix := fmt.Sprintf("choose another name, or change it with `berth online-endpoint update -n %s%s`", name, localFlag(local))
	if other, err := c.cfg.Store.GetEndpoint(ctx, name); err == nil && other.Local != local {
		kind := "a managed"
		if other.Local {
			kind = "a local"
		}
		fix = fmt.Sprintf("local and managed endpoints share one table of names on a Berth server: choose another name, or delete %s first with `berth online-endpoint delete -n %s%s`",
			name, name, localFlag(other.Local))
		return &diag.Error{Code: diag.EndpointAlreadyExists, Target: name,
			Message: fmt.Sprintf("endpoint %q already exists as %s endpoint: %s", name, kind, fix)}
	}
	return &diag.Error{Code: diag.EndpointAlreadyExists, Target: name,
		Message: fmt.Sprintf("endpoint %q already exists: %s", name, fix)}
}

// LocalNeedsNoKey is the answer to asking a local endpoint for credentials or new
// keys: its scoring URI takes requests without an Authorization header, as Azure's
// local endpoints do.
func LocalNeedsNoKey(name string) error {
	return &diag.Error{Code: diag.BadArgument, Target: name,
		Message: fmt.Sprintf("endpoint %q is a local endpoint, and local endpoints need no key or token: send requests to its scoring_uri without an Authorization header (`berth online-endpoint invoke -n %s --local` does)", name, name)}
}

func localFlag(local bool) string {
	if local {
		return " --local"
	}
	return ""
}
