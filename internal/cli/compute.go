package cli

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
)

var computeColumns = []string{"name", "type", "size", "min_instances", "max_instances", "provisioning_state"}

func newComputeCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "compute",
		Short: "Manage computes: clusters batch deployments run on, and attached Kubernetes clusters (az ml compute)",
	}
	cmd.AddCommand(computeCreate(g), computeAttach(g), computeShow(g), computeList(g), computeDelete(g), computeDetach(g))
	return cmd
}

// checkedSpec is what spec's batch types do once decoded: take their defaults, then
// report every problem (spec/batchdecode.go).
type checkedSpec interface {
	Default()
	Validate() error
}

// finishSpec defaults and validates a spec built from flags and --set rather than
// loaded with a spec.LoadX function, which does it itself.
func finishSpec(v any) error {
	if c, ok := v.(checkedSpec); ok {
		c.Default()
		return c.Validate()
	}
	return nil
}

func computeCreate(g *globals) *cobra.Command {
	var file, name, typ, size string
	var minInstances, maxInstances, idle int
	var sets []string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create or replace a compute cluster from compute.yml or from flags",
		Args:  cobra.NoArgs,
	}
	unsupported := addSetFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		// Flags win over the file: they are applied as sets after the user's own.
		// az takes the type in any case (AmlCompute, amlcompute).
		all := nameSets(sets, "name", name, "type", strings.ToLower(typ), "size", size)
		for _, f := range []struct {
			flag, field string
			v           int
		}{{"min-instances", "min_instances", minInstances}, {"max-instances", "max_instances", maxInstances},
			{"idle-time-before-scale-down", "idle_time_before_scale_down", idle}} {
			if cmd.Flags().Changed(f.flag) {
				all = append(all, f.field+"="+strconv.Itoa(f.v))
			}
		}
		var c *spec.Compute
		var err error
		if file != "" {
			if c, err = spec.LoadCompute(file, all); err != nil {
				return err
			}
		} else {
			c = &spec.Compute{}
			if err := spec.ApplySets(c, all); err != nil {
				return err
			}
			if c.Name == "" {
				return diag.New(diag.BadArgument, "--name is required (or -f with a file that names the compute)")
			}
			if err := finishSpec(c); err != nil {
				return err
			}
		}
		if c.Name == "" {
			return diag.New(diag.BadArgument, "--name is required (or -f with a file that names the compute)")
		}
		return putCompute(g, cmd, c)
	}
	f := cmd.Flags()
	f.StringVarP(&file, "file", "f", "", "compute YAML file")
	f.StringVarP(&name, "name", "n", "", "compute name (overrides the file)")
	f.StringVarP(&typ, "type", "t", "", "compute type: amlcompute")
	f.StringVar(&size, "size", "", "VM size, e.g. STANDARD_DS3_V2 (recorded; the machine is this one)")
	f.IntVar(&minInstances, "min-instances", 0, "minimum number of nodes")
	f.IntVar(&maxInstances, "max-instances", 0, "maximum number of nodes: caps instance_count of the jobs that run on it")
	f.IntVar(&idle, "idle-time-before-scale-down", 0, "seconds a node stays idle before it is released")
	addNoWait(cmd)
	return cmd
}

// putCompute sends a finished compute spec to the server and prints what it stored.
func putCompute(g *globals, cmd *cobra.Command, c *spec.Compute) error {
	cl, err := g.connect()
	if err != nil {
		return err
	}
	out, err := cl.PutCompute(cmd.Context(), c.Name, c)
	if err != nil {
		return err
	}
	return g.print(cmd.OutOrStdout(), out, computeColumns...)
}

func computeShow(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a compute",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.GetCompute(cmd.Context(), name)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, computeColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "compute name")
	requireName(cmd, "name")
	return cmd
}

func computeList(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List computes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListComputes(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, computeColumns...)
		},
	}
	cmd.Flags().StringP("type", "t", "", "accepted for az compatibility")
	return cmd
}

func computeDelete(g *globals) *cobra.Command {
	return computeRemove(g, "delete", "Delete a compute", "Deleted")
}

// computeRemove is `compute delete` and `compute detach`: both remove the compute from
// Berth, after a confirmation.
func computeRemove(g *globals, verb, short, done string) *cobra.Command {
	var name string
	var yes bool
	cmd := &cobra.Command{
		Use:   verb,
		Short: short,
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := confirm(cmd, yes, fmt.Sprintf("%s compute %q?", strings.ToUpper(verb[:1])+verb[1:], name)); err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteCompute(cmd.Context(), name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "%s compute %s\n", done, name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "compute name")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addNoWait(cmd)
	requireName(cmd, "name")
	return cmd
}
