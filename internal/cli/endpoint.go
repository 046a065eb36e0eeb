package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/wire"
)

var endpointColumns = []string{"name", "provisioning_state", "auth_mode", "traffic", "scoring_uri"}

func newEndpointCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "online-endpoint",
		Short: "Manage online endpoints (az ml online-endpoint)",
	}
	cmd.AddCommand(
		endpointCreate(g), endpointUpdate(g), endpointShow(g), endpointList(g), endpointDelete(g),
		endpointInvoke(g), endpointCredentials(g), endpointRegenerate(g),
	)
	addLocal(g, cmd.Commands()...)
	return cmd
}

// nameSets turns -n/-e overrides into --set entries applied after the user's own.
func nameSets(sets []string, pairs ...string) []string {
	out := append([]string{}, sets...)
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] != "" {
			out = append(out, pairs[i]+"="+pairs[i+1])
		}
	}
	return out
}

// loadEndpoint reads the endpoint from file, or builds it from the sets alone.
func loadEndpoint(file string, sets []string) (*spec.Endpoint, error) {
	if file != "" {
		return spec.LoadEndpoint(file, sets)
	}
	return spec.DecodeEndpoint("command line", []byte("{}"), sets)
}

func endpointCreate(g *globals) *cobra.Command {
	var file, name, authMode string
	var sets []string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create an endpoint from endpoint.yml, or from -n alone",
		Args:  cobra.NoArgs,
	}
	unsupported := addSetFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		ep, err := loadEndpoint(file, nameSets(sets, "name", name, "auth_mode", authMode))
		if err != nil {
			return err
		}
		printWarnings(cmd.ErrOrStderr(), ep.Warnings())
		c, err := g.connect()
		if err != nil {
			return err
		}
		out, err := c.CreateEndpoint(cmd.Context(), ep)
		if err != nil {
			return err
		}
		return g.print(cmd.OutOrStdout(), out, endpointColumns...)
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "endpoint YAML file")
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name (overrides the file)")
	cmd.Flags().StringVar(&authMode, "auth-mode", "", "key (default), aml_token or aad_token")
	addNoWait(cmd)
	return cmd
}

func endpointUpdate(g *globals) *cobra.Command {
	var file, name, traffic, mirror string
	var sets []string
	cmd := &cobra.Command{
		Use:   "update",
		Short: "Update an endpoint: its spec, --traffic or --mirror-traffic",
		Args:  cobra.NoArgs,
	}
	unsupported := addSetFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		var u wire.EndpointUpdate
		if file != "" || len(sets) > 0 {
			ep, err := loadEndpoint(file, nameSets(sets, "name", name))
			if err != nil {
				return err
			}
			printWarnings(cmd.ErrOrStderr(), ep.Warnings())
			name = ep.Name
			if u.Spec, err = json.Marshal(ep); err != nil {
				return err
			}
		}
		if name == "" {
			return diag.New(diag.BadArgument, "--name is required (or -f with a file that names the endpoint)")
		}
		if cmd.Flags().Changed("traffic") {
			t, err := spec.ParseTraffic(traffic)
			if err != nil {
				return err
			}
			if err := spec.ValidateTraffic(t); err != nil {
				return err
			}
			u.Traffic = t
		}
		if cmd.Flags().Changed("mirror-traffic") {
			m, err := spec.ParseTraffic(mirror)
			if err != nil {
				return err
			}
			u.MirrorTraffic = m
		}
		c, err := g.connect()
		if err != nil {
			return err
		}
		out, err := c.UpdateEndpoint(cmd.Context(), name, u)
		if err != nil {
			return err
		}
		return g.print(cmd.OutOrStdout(), out, endpointColumns...)
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "endpoint YAML file")
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	cmd.Flags().StringVarP(&traffic, "traffic", "r", "", `traffic split, e.g. "blue=90 green=10" (must sum to 0 or 100)`)
	cmd.Flags().StringVar(&mirror, "mirror-traffic", "", `copy a share of live traffic to one deployment, e.g. "green=10"`)
	addNoWait(cmd)
	return cmd
}

func requireName(cmd *cobra.Command, flag string) {
	cmd.MarkFlagRequired(flag)
}

func endpointShow(g *globals) *cobra.Command {
	var name string
	var web bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show an endpoint",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			ep, raw, err := c.GetEndpoint(cmd.Context(), name)
			if err != nil {
				return err
			}
			if web {
				return printWeb(cmd, ep.ScoringURI, "endpoints/"+url.PathEscape(ep.Name))
			}
			return g.print(cmd.OutOrStdout(), raw, endpointColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	addWeb(cmd, &web)
	requireName(cmd, "name")
	return cmd
}

func endpointList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List endpoints",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListEndpoints(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, endpointColumns...)
		},
	}
}

// confirm asks on the terminal, or requires --yes when there is none.
func confirm(cmd *cobra.Command, yes bool, question string) error {
	if yes {
		return nil
	}
	fi, err := os.Stdin.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return diag.New(diag.BadArgument, "%s: pass --yes to confirm (there is no terminal to ask)", question)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "%s (y/n): ", question)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
		return fmt.Errorf("cancelled")
	}
	return nil
}

func endpointDelete(g *globals) *cobra.Command {
	var name string
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete an endpoint and all its deployments",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := confirm(cmd, yes, fmt.Sprintf("Delete endpoint %q and all its deployments?", name)); err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			if err := c.DeleteEndpoint(cmd.Context(), name); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Deleted endpoint %s\n", name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	addNoWait(cmd)
	requireName(cmd, "name")
	return cmd
}

func endpointInvoke(g *globals) *cobra.Command {
	var name, requestFile, deployment string
	cmd := &cobra.Command{
		Use:   "invoke",
		Short: "Score a request file against an endpoint and print the response",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			body, err := os.ReadFile(requestFile)
			if err != nil {
				return diag.New(diag.BadArgument, "--request-file: %v", err)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			ep, _, err := c.GetEndpoint(cmd.Context(), name)
			if err != nil {
				return err
			}
			key := "" // local endpoints take requests without a key
			if !g.local {
				creds, err := c.ListKeys(cmd.Context(), name)
				if err != nil {
					return err
				}
				key = creds.Bearer()
			}
			status, _, resp, err := c.Score(cmd.Context(), ep.ScoringURI, key, deployment, body)
			if err != nil {
				return err
			}
			if status < 200 || status > 299 {
				return scoringError(ep.ScoringURI, status, resp)
			}
			out := cmd.OutOrStdout()
			if (g.query != nil || cmd.Flags().Changed("output")) && json.Valid(resp) {
				return g.print(out, resp)
			}
			out.Write(resp)
			if len(resp) > 0 && resp[len(resp)-1] != '\n' {
				io.WriteString(out, "\n")
			}
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	cmd.Flags().StringVarP(&requestFile, "request-file", "r", "", "JSON file with the request body")
	cmd.Flags().StringVarP(&deployment, "deployment-name", "d", "", "send to this deployment, whatever the traffic split (alias --deployment)")
	requireName(cmd, "name")
	cmd.MarkFlagRequired("request-file")
	return cmd
}

func endpointCredentials(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "get-credentials",
		Short: "Print the endpoint's keys, or a new token when its auth_mode is aml_token or aad_token",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			k, err := c.ListKeys(cmd.Context(), name)
			if err != nil {
				return err
			}
			raw, _ := json.Marshal(k)
			return g.print(cmd.OutOrStdout(), raw)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	requireName(cmd, "name")
	return cmd
}

func endpointRegenerate(g *globals) *cobra.Command {
	var name, keyType string
	cmd := &cobra.Command{
		Use:   "regenerate-keys",
		Short: "Replace the endpoint's primary or secondary key (key endpoints only: token endpoints fetch a new token with get-credentials)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kt := strings.ToLower(keyType)
			if kt != "primary" && kt != "secondary" {
				return diag.New(diag.BadArgument, "--key-type %q: use primary or secondary", keyType)
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			if _, err := c.RegenerateKeys(cmd.Context(), name, strings.ToUpper(kt[:1])+kt[1:]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Regenerated the %s key of endpoint %s\n", kt, name)
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "endpoint name")
	cmd.Flags().StringVar(&keyType, "key-type", "primary", "primary or secondary")
	requireName(cmd, "name")
	return cmd
}

// scoringError is a scoring answer of 400 or more in plain words: the code and message
// of a JSON error body ({"error": {"code", "message"}} or {"message"}), else the body.
func scoringError(uri string, status int, body []byte) error {
	var v struct {
		Error *struct {
			Code    string `json:"code"`
			Message string `json:"message"`
		} `json:"error"`
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &v) == nil {
		switch {
		case v.Error != nil && v.Error.Message != "":
			return fmt.Errorf("scoring %s answered %d %s: %s", uri, status, v.Error.Code, v.Error.Message)
		case v.Message != "":
			return fmt.Errorf("scoring %s answered %d: %s", uri, status, v.Message)
		}
	}
	return fmt.Errorf("scoring %s answered %d: %s", uri, status, strings.TrimSpace(string(body)))
}
