package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
)

// Connection is a workspace connection: where a service is and the credentials for it.
type Connection struct {
	Name        string            `json:"name"`
	Type        string            `json:"type,omitempty"`
	Target      string            `json:"target,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Credentials map[string]string `json:"credentials,omitempty"`
}

// Masked is the connection as `show` prints it: credential values never leave the server.
func (c Connection) Masked() Connection {
	m := c
	m.Credentials = map[string]string{}
	for k := range c.Credentials {
		m.Credentials[k] = "***"
	}
	return m
}

// PutConnection stores a connection, its credentials sealed with the server's key.
func (c *Controller) PutConnection(ctx context.Context, conn Connection) error {
	if !connectionName.MatchString(conn.Name) {
		return &diag.Error{Code: diag.BadArgument, Target: "name",
			Message: fmt.Sprintf("connection name %q must be 1 to 255 letters, digits, '-' or '_'", conn.Name)}
	}
	if c.cfg.Sealer == nil {
		return diag.New(diag.InternalServerError, "this server has no secret key configured")
	}
	creds, err := json.Marshal(conn.Credentials)
	if err != nil {
		return err
	}
	sealed, err := c.cfg.Sealer.Seal(creds)
	if err != nil {
		return err
	}
	public := conn
	public.Credentials = nil
	pub, err := json.Marshal(public)
	if err != nil {
		return err
	}
	return c.cfg.Store.PutConnection(ctx, &store.Connection{Name: conn.Name, Public: pub, Sealed: sealed})
}

// GetConnection returns a connection with its credentials opened.
func (c *Controller) GetConnection(ctx context.Context, name string) (Connection, error) {
	rec, err := c.cfg.Store.GetConnection(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return Connection{}, &diag.Error{Code: diag.ResourceNotFound, Target: name,
			Message: fmt.Sprintf("connection %q does not exist: create it with `berth connection create -n %s --credential key=value`", name, name)}
	}
	if err != nil {
		return Connection{}, err
	}
	var conn Connection
	if err := json.Unmarshal(rec.Public, &conn); err != nil {
		return Connection{}, err
	}
	plain, err := c.cfg.Sealer.Open(rec.Sealed)
	if err != nil {
		return Connection{}, fmt.Errorf("open the credentials of connection %q (was the data dir's secret.key replaced?): %w", name, err)
	}
	return conn, json.Unmarshal(plain, &conn.Credentials)
}

// ListConnections returns every connection, credentials masked.
func (c *Controller) ListConnections(ctx context.Context) ([]Connection, error) {
	recs, err := c.cfg.Store.ListConnections(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Connection, 0, len(recs))
	for _, r := range recs {
		conn, err := c.GetConnection(ctx, r.Name)
		if err != nil {
			return nil, err
		}
		out = append(out, conn.Masked())
	}
	return out, nil
}

// DeleteConnection deletes a connection.
func (c *Controller) DeleteConnection(ctx context.Context, name string) error {
	err := c.cfg.Store.DeleteConnection(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		_, err = c.GetConnection(ctx, name)
	}
	return err
}

var connectionName = regexp.MustCompile(`^[A-Za-z0-9_-]{1,255}$`)

var secretRef = regexp.MustCompile(`^\$\{\{\s*(.*?)\s*\}\}$`)

// resolveSecrets replaces environment_variables values written as secret references
// (${{azureml://connections/<name>/credentials/<key>}}, .../metadata/<key>, .../target,
// or the whole connection) with their values. It returns how many it resolved; a
// reference that cannot be resolved is a SecretsInjectionError naming it, never a value.
func (c *Controller) resolveSecrets(ctx context.Context, env map[string]string) (int, error) {
	names := make([]string, 0, len(env))
	for k := range env {
		names = append(names, k)
	}
	sort.Strings(names)
	resolved := 0
	var problems []*diag.Error
	for _, k := range names {
		m := secretRef.FindStringSubmatch(env[k])
		if m == nil {
			continue
		}
		val, err := c.resolveRef(ctx, m[1])
		if err != nil {
			problems = append(problems, &diag.Error{Code: diag.SecretsInjectionError, Target: "environment_variables." + k,
				Message: fmt.Sprintf("environment_variables.%s refers to %s: %v", k, env[k], err)})
			continue
		}
		env[k] = val
		resolved++
	}
	if len(problems) == 1 {
		return resolved, problems[0]
	}
	if len(problems) > 1 {
		return resolved, &diag.Error{Code: diag.SecretsInjectionError, Message: fmt.Sprintf("%d secret references could not be resolved", len(problems)), Details: problems}
	}
	return resolved, nil
}

func (c *Controller) resolveRef(ctx context.Context, ref string) (string, error) {
	if strings.HasPrefix(ref, "keyvault:") {
		return "", errors.New("Key Vault references are not resolved by Berth: store the value with `berth connection create -n <name> --credential <key>=<value>` and write ${{azureml://connections/<name>/credentials/<key>}}")
	}
	rest, ok := strings.CutPrefix(ref, "azureml://connections/")
	if !ok {
		return "", errors.New("the reference is not of the form azureml://connections/<name>[/credentials/<key> | /metadata/<key> | /target]")
	}
	parts := strings.Split(rest, "/")
	conn, err := c.GetConnection(ctx, parts[0])
	if err != nil {
		if de := diag.As(err); de != nil {
			return "", errors.New(de.Message)
		}
		return "", err
	}
	switch {
	case len(parts) == 1:
		b, err := json.Marshal(conn)
		return string(b), err
	case len(parts) == 2 && parts[1] == "target":
		return conn.Target, nil
	case len(parts) == 3 && parts[1] == "credentials":
		if v, ok := conn.Credentials[parts[2]]; ok {
			return v, nil
		}
		return "", fmt.Errorf("connection %q has no credential %q: add it with `berth connection create -n %s --credential %s=...`", parts[0], parts[2], parts[0], parts[2])
	case len(parts) == 3 && parts[1] == "metadata":
		if v, ok := conn.Metadata[parts[2]]; ok {
			return v, nil
		}
		return "", fmt.Errorf("connection %q has no metadata %q", parts[0], parts[2])
	}
	return "", errors.New("the reference is not of the form azureml://connections/<name>[/credentials/<key> | /metadata/<key> | /target]")
}
