package cli

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
)

// addLocal registers --local on endpoint and deployment commands. Local endpoints are
// a namespace of their own, as in az ml: with --local a command sees only local
// endpoints, without it only managed ones; scoring a local endpoint needs no key.
// connect scopes the client to the namespace the flag chose.
func addLocal(g *globals, cmds ...*cobra.Command) {
	for _, cmd := range cmds {
		cmd.Flags().BoolVar(&g.local, "local", false, "act on local endpoints, whose scoring needs no key (a namespace of their own, as in az ml)")
	}
}

// ensureLocalEndpoint creates the local endpoint a deployment names when there is
// none, as `az ml online-deployment create --local` does.
func ensureLocalEndpoint(ctx context.Context, c *client.Client, name string, progress io.Writer) error {
	_, _, err := c.GetEndpoint(ctx, name)
	if de := diag.As(err); de == nil || de.Code != diag.EndpointNotFound {
		return err
	}
	if _, cerr := c.CreateEndpoint(ctx, map[string]string{"name": name}); cerr != nil {
		if de := diag.As(cerr); de != nil && de.Code == diag.EndpointAlreadyExists {
			return err // a managed endpoint has the name: say so as not found with --local
		}
		return cerr
	}
	fmt.Fprintf(progress, "Created local endpoint %s\n", name)
	return nil
}
