package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/wire"
)

var batchEndpointColumns = []string{"name", "provisioning_state", "defaults", "scoring_uri"}

func newBatchEndpointCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "batch-endpoint",
		Short: "Manage batch endpoints and run batch jobs on them (az ml batch-endpoint)",
	}
	cmd.AddCommand(batchEndpointCreate(g), batchEndpointUpdate(g), batchEndpointShow(g), batchEndpointList(g),
		batchEndpointDelete(g), batchEndpointInvoke(g), batchEndpointListJobs(g))
	return cmd
}

func batchEndpointCreate(g *globals) *cobra.Command {
	var file, name string
	var sets []string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create a batch endpoint from endpoint.yml, or from -n alone",
		Args:  cobra.NoArgs,
	}
	unsupported := addSetFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		ep, err := loadBatchEndpoint(file, nameSets(sets, "name", name))
		if err != nil {
			return err
		}
		c, err := g.connect()
		if err != nil {
			return err
		}
		out, err := c.CreateBatchEndpoint(cmd.Context(), ep)
		if err != nil {
			return err
		}
		return g.print(cmd.OutOrStdout(), out, batchEndpointColumns...)
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "batch endpoint YAML file")
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name (overrides the file)")
	addNoWait(cmd)
	return cmd
}

// loadBatchEndpoint reads the endpoint from file, or builds it from the sets alone.
func loadBatchEndpoint(file string, sets []string) (*spec.BatchEndpoint, error) {
	if file != "" {
		return spec.LoadBatchEndpoint(file, sets)
	}
	ep := &spec.BatchEndpoint{}
	if err := spec.ApplySets(ep, sets); err != nil {
		return nil, err
	}
	if ep.Name == "" {
		return nil, diag.New(diag.BadArgument, "--name is required (or -f with a file that names the endpoint)")
	}
	return ep, finishSpec(ep)
}

// batchEndpointUpdate sends a new spec when -f is given or --set changes more than
// the default deployment: the file's, or the stored spec with the sets applied. A
// --set (or --defaults) of only defaults.deployment_name sends just the new default,
// so it cannot race with another change of the spec.
func batchEndpointUpdate(g *globals) *cobra.Command {
	var file, name, defaults string
	var sets []string
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Update a batch endpoint: its spec, or its default deployment with --set defaults.deployment_name=D",
		Args:  cobra.NoArgs,
	}
	unsupported := addSetFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		if defaults != "" {
			k, v, ok := strings.Cut(defaults, "=")
			if !ok || k != "deployment_name" {
				return diag.New(diag.BadArgument, "--defaults %q: write it as deployment_name=<deployment>", defaults)
			}
			sets = append(sets, "defaults.deployment_name="+v)
		}
		if file == "" && name == "" {
			return diag.New(diag.BadArgument, "--name is required (or -f with a file that names the endpoint)")
		}
		c, err := g.connect()
		if err != nil {
			return err
		}
		u, err := batchEndpointChange(cmd.Context(), c, file, name, sets)
		if err != nil {
			return err
		}
		if file != "" {
			var ep spec.BatchEndpoint
			if err := json.Unmarshal(u.Spec, &ep); err != nil {
				return err
			}
			name = ep.Name
		}
		out, err := c.UpdateBatchEndpoint(cmd.Context(), name, u)
		if err != nil {
			return err
		}
		return g.print(cmd.OutOrStdout(), out, batchEndpointColumns...)
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "batch endpoint YAML file")
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name (overrides the file)")
	cmd.Flags().StringVar(&defaults, "defaults", "", "the default deployment: deployment_name=<deployment>")
	addNoWait(cmd)
	return cmd
}

// batchEndpointChange builds the PATCH body of update.
func batchEndpointChange(ctx context.Context, c *client.Client, file, name string, sets []string) (wire.BatchEndpointUpdate, error) {
	var u wire.BatchEndpointUpdate
	if file != "" {
		ep, err := spec.LoadBatchEndpoint(file, nameSets(sets, "name", name))
		if err != nil {
			return u, err
		}
		u.Spec, err = json.Marshal(ep)
		return u, err
	}
	if len(sets) == 0 {
		return u, diag.New(diag.BadArgument, "nothing to update: give -f, --set or --defaults")
	}
	if d, ok := onlyDefaultDeployment(sets); ok {
		u.DefaultDeployment = &d
		return u, nil
	}
	view, _, err := c.GetBatchEndpoint(ctx, name)
	if err != nil {
		return u, err
	}
	ep := &spec.BatchEndpoint{Name: view.Name, Description: view.Description, Tags: view.Tags,
		Properties: view.Properties, AuthMode: view.AuthMode,
		Defaults: spec.BatchDefaults{DeploymentName: view.Defaults.DeploymentName}}
	if err := spec.ApplySets(ep, sets); err != nil {
		return u, err
	}
	if err := finishSpec(ep); err != nil {
		return u, err
	}
	u.Spec, err = json.Marshal(ep)
	return u, err
}

// onlyDefaultDeployment reports whether sets change only defaults.deployment_name,
// and the last value they give it.
func onlyDefaultDeployment(sets []string) (string, bool) {
	d := ""
	for _, s := range sets {
		k, v, ok := strings.Cut(s, "=")
		if !ok || k != "defaults.deployment_name" {
			return "", false
		}
		d = v
	}
	return d, len(sets) > 0
}

func batchEndpointShow(g *globals) *cobra.Command {
	var name string
	var web bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a batch endpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			ep, raw, err := c.GetBatchEndpoint(cmd.Context(), name)
			if err != nil {
				return err
			}
			if web {
				return printWeb(cmd, ep.ScoringURI, "batch-endpoints/"+url.PathEscape(ep.Name))
			}
			return g.print(cmd.OutOrStdout(), raw, batchEndpointColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	addWeb(cmd, &web)
	requireName(cmd, "name")
	return cmd
}

func batchEndpointList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List batch endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListBatchEndpoints(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, batchEndpointColumns...)
		},
	}
}

func batchEndpointDelete(g *globals) *cobra.Command {
	var name string
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a batch endpoint and all its deployments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := confirm(cmd, yes, fmt.Sprintf("Delete batch endpoint %q and all its deployments?", name)); err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteBatchEndpoint(cmd.Context(), name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Deleted batch endpoint %s\n", name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addNoWait(cmd)
	requireName(cmd, "name")
	return cmd
}

func batchEndpointListJobs(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "list-jobs",
		Short: "List a batch endpoint's jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListJobs(cmd.Context(), name, "")
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, jobColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	requireName(cmd, "name")
	return cmd
}
