package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

func newDiagnoseCommand(g *globals) *cobra.Command {
	var endpoint, name string
	var lines int
	cmd := &cobra.Command{
		Use:   "diagnose [CODE]",
		Short: "Explain why a deployment failed and how to fix it, or explain an error code",
		Long: `berth diagnose -e <endpoint> [-n <deployment>] prints each deployment's state, its error
code, what happened, the fix, and the last lines of both container logs.
berth diagnose <CODE> explains a documented error code (e.g. berth diagnose ResourceNotReady);
berth diagnose --list lists them all.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			out := cmd.OutOrStdout()
			if list, _ := cmd.Flags().GetBool("list"); list {
				for _, e := range diag.Catalogue() {
					fmt.Fprintf(out, "%-28s %s\n", e.Code, e.Reason)
				}
				return nil
			}
			if len(args) == 1 {
				e, ok := diag.Lookup(diag.Code(args[0]))
				if !ok {
					return diag.New(diag.BadArgument, "%q is not a documented error code: `berth diagnose --list` lists them", args[0])
				}
				printEntry(out, e, "")
				return nil
			}
			if endpoint == "" {
				return diag.New(diag.BadArgument, "give an error code, or -e <endpoint> [-n <deployment>]")
			}
			return diagnoseEndpoint(cmd, g, endpoint, name, lines)
		},
	}
	cmd.Flags().StringVarP(&endpoint, "endpoint-name", "e", "", "endpoint name")
	cmd.Flags().StringVarP(&name, "name", "n", "", "deployment name (default: every deployment of the endpoint)")
	cmd.Flags().IntVarP(&lines, "lines", "l", 20, "log lines to show per container")
	cmd.Flags().Bool("list", false, "list every documented error code")
	addLocal(g, cmd)
	return cmd
}

// diagnoseEndpoint prints the endpoint, each deployment's diagnosis and its recent operations.
func diagnoseEndpoint(cmd *cobra.Command, g *globals, endpoint, name string, lines int) error {
	out := cmd.OutOrStdout()
	c, err := g.connect()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	ep, _, err := c.GetEndpoint(ctx, endpoint)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Endpoint %s: %s; traffic %s; scoring %s\n", ep.Name, ep.ProvisioningState, cell(toAny(ep.Traffic)), ep.ScoringURI)
	var raws []json.RawMessage
	if name != "" {
		raw, err := c.GetDeployment(ctx, endpoint, name)
		if err != nil {
			return err
		}
		raws = append(raws, raw)
	} else {
		all, err := c.ListDeployments(ctx, endpoint)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(all, &raws); err != nil {
			return err
		}
		if len(raws) == 0 {
			fmt.Fprintf(out, "No deployments: create one with `berth online-deployment create -f <file>`\n")
		}
	}
	for _, raw := range raws {
		if err := diagnoseDeployment(cmd, c, out, endpoint, raw, lines); err != nil {
			return err
		}
	}
	ops, err := c.Operations(ctx, endpoint)
	if err != nil {
		return err
	}
	printOperations(out, endpoint, ops, name)
	return nil
}

// printOperations prints the newest operations, of one deployment when name is set.
func printOperations(out io.Writer, endpoint string, ops []wire.Operation, name string) {
	fmt.Fprintf(out, "\nRecent operations on %s:\n", endpoint)
	for i, op := range ops {
		if i == 8 {
			break
		}
		if name != "" && op.Deployment != name {
			continue
		}
		target := "endpoint"
		if op.Deployment != "" {
			target = "deployment " + op.Deployment
		}
		fmt.Fprintf(out, "  %s  %-6s %-22s %-10s", op.StartedAt, op.Kind, target, op.State)
		if op.Error != nil {
			fmt.Fprintf(out, " (%s)", op.Error.Code)
		}
		fmt.Fprintln(out)
	}
}

func toAny(m map[string]int) any {
	out := map[string]any{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func printEntry(w io.Writer, e diag.Entry, indent string) {
	fmt.Fprintf(w, "%s%s\n", indent, e.Code)
	fmt.Fprintf(w, "%s  Why:   %s\n", indent, e.Reason)
	fmt.Fprintf(w, "%s  Fix:   %s\n", indent, e.Remedy)
	fmt.Fprintf(w, "%s  Berth: %s\n", indent, e.Berth)
}

func diagnoseDeployment(cmd *cobra.Command, c *client.Client, out io.Writer, endpoint string, raw json.RawMessage, lines int) error {
	var d struct {
		Name              string          `json:"name"`
		ProvisioningState string          `json:"provisioning_state"`
		Error             *wire.Error     `json:"error"`
		Instances         []wire.Instance `json:"instances"`
		Python            string          `json:"python"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nDeployment %s: %s\n", d.Name, d.ProvisioningState)
	if d.Python != "" {
		fmt.Fprintf(out, "  python: %s (built on it; kept when berth serve restarts with another)\n", d.Python)
	}
	for _, in := range d.Instances {
		state := in.State
		if in.Address != "" { // instances in berth serve's process have none
			state += " " + in.Address
		}
		fmt.Fprintf(out, "  instance %d: %s, %d restarts", in.Index, state, in.Restarts)
		if p := in.Phases; p != nil {
			fmt.Fprintf(out, "; artifact copy %.0f ms, environment %.0f ms, import of score.py %.0f ms, init() %.0f ms, ready %.0f ms after start", p["artifact_copy_ms"], p["environment_ms"], p["import_ms"], p["init_ms"], p["ready_ms"])
		}
		fmt.Fprintln(out)
	}
	if d.Error != nil {
		fmt.Fprintf(out, "  Error: (%s) %s\n", d.Error.Code, indentLines(d.Error.Message, "    "))
		// The most specific code says the cause: a detail's code when there is one.
		code := diag.Code(d.Error.Code)
		for _, det := range d.Error.Details {
			if det.Code != "" && det.Code != string(diag.BadArgument) {
				code = diag.Code(det.Code)
			}
			fmt.Fprintf(out, "  Cause: (%s) %s\n", det.Code, indentLines(det.Message, "    "))
		}
		if e, ok := diag.Lookup(code); ok {
			fmt.Fprintf(out, "  What happened: %s\n  Fix: %s\n", e.Reason, e.Remedy)
		}
	} else if d.ProvisioningState == wire.StateSucceeded {
		fmt.Fprintf(out, "  Healthy: nothing to fix.\n")
	}
	for _, container := range []struct{ name, wire string }{{"inference-server", "InferenceServer"}, {"storage-initializer", "StorageInitializer"}} {
		data, err := c.GetLogs(cmd.Context(), endpoint, d.Name, wire.GetLogs{Tail: lines, ContainerType: container.wire})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "  %s log (last %d lines):\n", container.name, lines)
		if len(strings.TrimSpace(string(data))) == 0 {
			fmt.Fprintf(out, "    (empty: the container never started)\n")
			continue
		}
		fmt.Fprintf(out, "    %s\n", indentLines(strings.TrimRight(string(data), "\n"), "    "))
	}
	return nil
}

func indentLines(s, indent string) string { return strings.ReplaceAll(s, "\n", "\n"+indent) }
