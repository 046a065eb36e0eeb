package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/wire"
)

var deploymentColumns = []string{"name", "endpoint_name", "provisioning_state", "instance_count", "instance_type"}

func newDeploymentCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "online-deployment",
		Short: "Manage online deployments (az ml online-deployment)",
	}
	cmd.AddCommand(deploymentPut(g, true), deploymentPut(g, false), deploymentShow(g), deploymentList(g),
		deploymentDelete(g), deploymentLogs(g))
	addLocal(g, cmd.Commands()...)
	return cmd
}

// deploymentPut is `create` (create=true) or `update`. update without -f applies
// --set to the spec the server stores.
func deploymentPut(g *globals, create bool) *cobra.Command {
	var file, name, endpoint string
	var sets []string
	var allTraffic, noWait bool
	verb, short := "update", "Update a deployment from its YAML, or its stored spec with --set: new instances replace the old once ready"
	if create {
		verb, short = "create", "Create a deployment from its YAML and wait until it is Succeeded or Failed"
	}
	cmd := &cobra.Command{Use: verb, Short: short, Args: cobra.NoArgs}
	unsupported := addSetFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		var d *spec.Deployment
		var err error
		switch {
		case file != "":
			if d, err = spec.LoadDeployment(file, nameSets(sets, "name", name, "endpoint_name", endpoint)); err != nil {
				return err
			}
		case create:
			return diag.New(diag.BadArgument, "--file is required: the deployment YAML")
		case name == "" || endpoint == "":
			return diag.New(diag.BadArgument, "give -f with the deployment YAML, or --name and --endpoint-name to update the stored spec with --set")
		}
		c, err := g.connect()
		if err != nil {
			return err
		}
		ctx := cmd.Context()
		var reuse *wire.DeploymentPut
		if d == nil {
			var stored wire.DeploymentPut
			if d, stored, err = storedDeployment(ctx, c, endpoint, name, sets); err != nil {
				return err
			}
			reuse = runsStill(stored, sets) // what it runs, not what its folders hold now
		}
		printWarnings(cmd.ErrOrStderr(), d.Warnings())
		if create && g.local {
			if err := ensureLocalEndpoint(ctx, c, d.EndpointName, cmd.ErrOrStderr()); err != nil {
				return err
			}
		}
		out, err := putDeployment(ctx, c, d, putOptions{create: create, allTraffic: allTraffic, wait: !noWait, reuse: reuse}, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		if allTraffic {
			when := "now that it succeeded"
			if noWait {
				when = "once it succeeds"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Traffic of endpoint %s: %s=100, set by the server %s\n", d.EndpointName, d.Name, when)
		}
		return g.print(cmd.OutOrStdout(), out, deploymentColumns...)
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "deployment YAML file (update: default the stored spec)")
	cmd.Flags().StringVarP(&name, "name", "n", "", "deployment name (overrides the file)")
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (overrides the file; alias --endpoint)")
	cmd.Flags().BoolVar(&noWait, "no-wait", false, "return at once instead of waiting for the deployment")
	cmd.Flags().Bool("skip-script-validation", false, "accepted for az compatibility")
	if create {
		cmd.Flags().BoolVar(&allTraffic, "all-traffic", false, "send 100% of the endpoint's traffic to this deployment once it succeeds")
	}
	return cmd
}

// putOptions says how putDeployment sends a deployment.
type putOptions struct {
	create, allTraffic, wait bool
	reuse                    *wire.DeploymentPut // the artifacts to send instead of local folders (an update without a file)
}

// putDeployment checks the endpoint exists, uploads what the server lacks, creates or
// updates the deployment and, when wait is set, waits for it to settle.
func putDeployment(ctx context.Context, c *client.Client, d *spec.Deployment, o putOptions, progress io.Writer) (json.RawMessage, error) {
	// Fail fast on a missing endpoint, before uploading anything.
	if _, _, err := c.GetEndpoint(ctx, d.EndpointName); err != nil {
		return nil, err
	}
	put, err := upload(ctx, c, d, o.reuse, progress)
	if err != nil {
		return nil, err
	}
	var out json.RawMessage
	if o.create {
		put.AllTraffic = o.allTraffic // kept by the server with the deployment until applied
		out, err = c.CreateDeployment(ctx, d.EndpointName, put)
	} else {
		out, err = c.UpdateDeployment(ctx, d.EndpointName, d.Name, put)
	}
	if err != nil || !o.wait {
		return out, err
	}
	return waitDeployment(ctx, c, d.EndpointName, d.Name, progress)
}

// waitDeployment polls the deployment until it is Succeeded or Failed, printing progress, and
// returns its final view; a Failed deployment is returned as its error.
func waitDeployment(ctx context.Context, c *client.Client, endpoint, name string, progress io.Writer) (json.RawMessage, error) {
	start := time.Now()
	last := ""
	live := &liveLine{w: progress, tty: isTerminal(progress)}
	defer live.end()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		raw, err := c.GetDeployment(ctx, endpoint, name)
		if err != nil {
			return nil, stoppedWaiting(ctx, err, endpoint, name)
		}
		var v struct {
			ProvisioningState string      `json:"provisioning_state"`
			Error             *wire.Error `json:"error"`
			Instances         []wire.Instance
			Progress          string
			Warnings          []string
		}
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, err
		}
		line := v.ProvisioningState
		if v.Progress != "" {
			line += ": " + v.Progress
		}
		if len(v.Instances) > 0 {
			parts := make([]string, len(v.Instances))
			for i, in := range v.Instances {
				parts[i] = fmt.Sprintf("instance %d %s", in.Index, in.State)
			}
			line += " (" + strings.Join(parts, ", ") + ")"
		}
		if line != last {
			live.show(fmt.Sprintf("[%5.1fs] deployment %s/%s: %s", time.Since(start).Seconds(), endpoint, name, line))
			last = line
		}
		switch v.ProvisioningState {
		case wire.StateSucceeded:
			live.end()
			for _, warning := range v.Warnings {
				fmt.Fprintf(progress, "WARNING: %s\n", warning)
			}
			return raw, nil
		case wire.StateFailed:
			if v.Error != nil {
				return nil, client.FromWire(v.Error)
			}
			return nil, diag.New(diag.ResourceNotReady, "deployment %s failed", name)
		}
		select {
		case <-ctx.Done():
			return nil, stoppedWaiting(ctx, ctx.Err(), endpoint, name)
		case <-tick.C:
		}
	}
}

// stoppedWaiting is the error of a wait cut short by Ctrl-C: the server goes on, and the
// message says how to follow it.
func stoppedWaiting(ctx context.Context, err error, endpoint, name string) error {
	if ctx.Err() == nil {
		return err
	}
	return fmt.Errorf("stopped waiting (interrupted); the server goes on with deployment %s/%s: follow it with `berth online-deployment show -e %s -n %s` or `berth online-deployment get-logs -e %s -n %s`",
		endpoint, name, endpoint, name, endpoint, name)
}

func deploymentShow(g *globals) *cobra.Command {
	var name, endpoint string
	var web bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a deployment, with its state and error",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			if web {
				ep, _, err := c.GetEndpoint(cmd.Context(), endpoint)
				if err != nil {
					return err
				}
				return printWeb(cmd, ep.ScoringURI, "endpoints/"+url.PathEscape(ep.Name))
			}
			raw, err := c.GetDeployment(cmd.Context(), endpoint, name)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, deploymentColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "deployment name")
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (alias --endpoint)")
	addWeb(cmd, &web)
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("endpoint-name")
	return cmd
}

func deploymentList(g *globals) *cobra.Command {
	var endpoint string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List an endpoint's deployments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListDeployments(cmd.Context(), endpoint)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, deploymentColumns...)
		},
	}
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (alias --endpoint)")
	cmd.MarkFlagRequired("endpoint-name")
	return cmd
}

func deploymentDelete(g *globals) *cobra.Command {
	var name, endpoint string
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a deployment (it must have no traffic)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := confirm(cmd, yes, fmt.Sprintf("Delete deployment %q of endpoint %q?", name, endpoint)); err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteDeployment(cmd.Context(), endpoint, name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Deleted deployment %s/%s\n", endpoint, name)
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

func deploymentLogs(g *globals) *cobra.Command {
	var name, endpoint, container string
	var lines, instance int
	var previous bool
	cmd := &cobra.Command{
		Use:   "get-logs",
		Short: "Print the tail of a deployment's inference-server or storage-initializer log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var ct string
			switch container {
			case "", "inference-server":
				ct = "InferenceServer"
			case "storage-initializer":
				ct = "StorageInitializer"
			default:
				return diag.New(diag.BadArgument, "--container %q: use inference-server or storage-initializer", container)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			req := wire.GetLogs{Tail: lines, ContainerType: ct, Previous: previous}
			if cmd.Flags().Changed("instance") {
				req.Instance = &instance
			}
			data, err := c.GetLogs(cmd.Context(), endpoint, name, req)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(data)
			return err
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "deployment name")
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name (alias --endpoint)")
	cmd.Flags().IntVarP(&lines, "lines", "l", 5000, "how many of the last lines to print")
	cmd.Flags().StringVarP(&container, "container", "c", "inference-server", "inference-server or storage-initializer")
	cmd.Flags().IntVar(&instance, "instance", 0, "the log of this instance (running or stopped; `show` lists the running ones)")
	cmd.Flags().BoolVar(&previous, "previous", false, "the log of the instance before the current one (the one it replaced, or that ran before a restart)")
	cmd.MarkFlagsMutuallyExclusive("instance", "previous")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("endpoint-name")
	return cmd
}

// liveLine shows a long operation's progress: one line rewritten in place on a
// terminal, a plain line per change when the output is piped or logged.
type liveLine struct {
	w     io.Writer
	tty   bool
	shown bool // a line is on the terminal without its newline
}

func (l *liveLine) show(line string) {
	if !l.tty {
		fmt.Fprintln(l.w, line)
		return
	}
	fmt.Fprintf(l.w, "\r\033[K%s", line)
	l.shown = true
}

// end keeps the last line on the terminal and moves below it.
func (l *liveLine) end() {
	if l.shown {
		fmt.Fprintln(l.w)
		l.shown = false
	}
}
