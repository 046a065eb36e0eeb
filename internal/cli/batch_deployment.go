package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/wire"
)

var batchDeploymentColumns = []string{"name", "endpoint_name", "provisioning_state", "compute", "model"}

func newBatchDeploymentCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "batch-deployment",
		Short: "Manage batch deployments (az ml batch-deployment)",
	}
	cmd.AddCommand(batchDeploymentPut(g, true), batchDeploymentPut(g, false), batchDeploymentShow(g),
		batchDeploymentList(g), batchDeploymentDelete(g), batchDeploymentListJobs(g))
	return cmd
}

// batchDeploymentPut is `create` or `update`: both upload what the server lacks and
// create or replace the deployment, as Azure's create overwrites an existing one.
func batchDeploymentPut(g *globals, create bool) *cobra.Command {
	var file, name, endpoint string
	var sets []string
	var setDefault bool
	verb, short := "update", "Replace a batch deployment with its YAML"
	if create {
		verb, short = "create", "Create (or replace) a batch deployment from its YAML"
	}
	cmd := &cobra.Command{Use: verb, Short: short, Args: cobra.NoArgs}
	unsupported := addSetFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		d, err := spec.LoadBatchDeployment(file, nameSets(sets, "name", name, "endpoint_name", endpoint))
		if err != nil {
			return err
		}
		c, err := g.connect()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		// Fail fast on a missing endpoint, before uploading anything.
		if _, _, err := c.GetBatchEndpoint(ctx, d.EndpointName); err != nil {
			return err
		}
		put, err := uploadBatch(ctx, c, d, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		put.SetDefault = setDefault
		out, err := c.PutBatchDeployment(ctx, d.EndpointName, d.Name, put)
		if err != nil {
			return err
		}
		var built struct{ Warnings []string }
		if json.Unmarshal(out, &built) == nil {
			for _, w := range built.Warnings {
				fmt.Fprintf(cmd.ErrOrStderr(), "WARNING: %s\n", w) // its jobs run with what is installed
			}
		}
		if setDefault {
			fmt.Fprintf(cmd.ErrOrStderr(), "Default deployment of batch endpoint %s: %s\n", d.EndpointName, d.Name)
		}
		return g.print(cmd.OutOrStdout(), out, batchDeploymentColumns...)
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "batch deployment YAML file")
	cmd.Flags().StringVarP(&name, "name", "n", "", "deployment name (overrides the file)")
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (overrides the file; alias --endpoint)")
	cmd.Flags().BoolVar(&setDefault, "set-default", false, "make it the endpoint's default deployment")
	cmd.Flags().Bool("skip-script-validation", false, "accepted for az compatibility")
	addNoWait(cmd)
	cmd.MarkFlagRequired("file")
	return cmd
}

// uploadBatch sends the model and code folders to the server unless it already has
// them, puts the conda file's content in the spec, and returns the PUT body.
func uploadBatch(ctx context.Context, c *client.Client, d *spec.BatchDeployment, progress io.Writer) (wire.BatchDeploymentPut, error) {
	var put wire.BatchDeploymentPut
	var err error
	if env := d.Environment; env != nil {
		if path, ok := env.CondaFile.(string); ok {
			if env.CondaFile, err = readCondaFile(path); err != nil {
				return put, err
			}
		}
	}
	if d.Model != nil && !d.Model.IsRef() && d.Model.Path != "" {
		if put.ModelArtifact, err = uploadPath(ctx, c, "model", d.Model.Path, progress); err != nil {
			return put, err
		}
	}
	if d.CodeConfiguration != nil && d.CodeConfiguration.Code != "" {
		if put.CodeArtifact, err = uploadPath(ctx, c, "code", d.CodeConfiguration.Code, progress); err != nil {
			return put, err
		}
	}
	put.Spec, err = json.Marshal(d)
	return put, err
}

func batchDeploymentShow(g *globals) *cobra.Command {
	var name, endpoint string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a batch deployment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.GetBatchDeployment(cmd.Context(), endpoint, name)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, batchDeploymentColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "deployment name")
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (alias --endpoint)")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("endpoint-name")
	return cmd
}

func batchDeploymentList(g *globals) *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a batch endpoint's deployments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListBatchDeployments(cmd.Context(), endpoint)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, batchDeploymentColumns...)
		},
	}
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (alias --endpoint)")
	cmd.MarkFlagRequired("endpoint-name")
	return cmd
}

func batchDeploymentDelete(g *globals) *cobra.Command {
	var name, endpoint string
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a batch deployment",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := confirm(cmd, yes, fmt.Sprintf("Delete batch deployment %q of endpoint %q?", name, endpoint)); err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteBatchDeployment(cmd.Context(), endpoint, name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Deleted batch deployment %s/%s\n", endpoint, name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "deployment name")
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (alias --endpoint)")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addNoWait(cmd)
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("endpoint-name")
	return cmd
}

func batchDeploymentListJobs(g *globals) *cobra.Command {
	var name, endpoint string
	cmd := &cobra.Command{
		Use:   "list-jobs",
		Short: "List a batch deployment's jobs, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListJobs(cmd.Context(), endpoint, name)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, jobColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "deployment name")
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (alias --endpoint)")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("endpoint-name")
	return cmd
}
