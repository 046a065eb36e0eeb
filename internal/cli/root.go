// Package cli owns the berth command tree: nouns and flags that mirror `az ml`, talking
// to a Berth server only through the REST client.
package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// globals are the flags every command shares.
type globals struct {
	server, token, output string
	// queryExpr is --query; query is it compiled, by prepare.
	queryExpr string
	query     *query
	// local is --local of endpoint and deployment commands (addLocal).
	local bool
}

// NewRoot builds the berth command tree. extra commands (serve, inference-server) are
// added by the caller so that this package links no server code.
func NewRoot(extra ...*cobra.Command) *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:   "berth",
		Short: "Deploy Azure ML online endpoints on one machine: no Docker, no cloud",
		Long: `berth deploys the endpoint.yml, deployment.yml, score.py and model folder you use with
Azure Machine Learning, on this machine, in seconds. The commands mirror 'az ml':

  berth serve &                                   # start the server
  berth online-endpoint create -f endpoint.yml
  berth online-deployment create -f blue-deployment.yml --all-traffic
  berth online-endpoint invoke -n my-endpoint --request-file sample-request.json`,
		SilenceUsage:  true,
		SilenceErrors: true,
		Version:       Version(),
		PersistentPreRunE: func(*cobra.Command, []string) error {
			return g.prepare()
		},
	}
	root.SetVersionTemplate("berth {{.Version}}\n")
	pf := root.PersistentFlags()
	pf.StringVar(&g.server, "server", "", "Berth server URL (env BERTH_SERVER; default: read from $BERTH_DATA_DIR/server.json)")
	pf.StringVar(&g.token, "token", "", "admin token (env BERTH_TOKEN; default: read from server.json)")
	pf.StringVarP(&g.output, "output", "o", "json", "output format: "+outputFormats+" (jsonc and yamlc are json and yaml: no colors)")
	pf.StringVar(&g.queryExpr, "query", "", "JMESPath query applied to the output before it is formatted, as in az (e.g. --query scoring_uri -o tsv)")
	addAzGlobalFlags(root)
	root.AddCommand(newVersionCommand(), newEndpointCommand(g), newDeploymentCommand(g), newConnectionCommand(g), newAssetCommand(g, modelKind()), newAssetCommand(g, environmentKind()), newAssetCommand(g, dataKind()), newDiagnoseCommand(g), newAccountCommand(g))
	root.AddCommand(newComputeCommand(g), newBatchEndpointCommand(g), newBatchDeploymentCommand(g), newJobCommand(g))
	root.AddCommand(newStorageInitializerCommand(g))
	root.AddCommand(extra...)
	root.SetGlobalNormalizationFunc(azAliases)
	return root
}

// connect finds the server and token: flags, then env, then server.json in the data dir.
func (g *globals) connect() (*client.Client, error) {
	server, token := g.server, g.token
	if server == "" {
		server = os.Getenv("BERTH_SERVER")
	}
	if token == "" {
		token = os.Getenv("BERTH_TOKEN")
	}
	if server == "" || token == "" {
		dir := os.Getenv("BERTH_DATA_DIR")
		if dir == "" {
			home, _ := os.UserHomeDir()
			dir = filepath.Join(home, ".berth")
		}
		path := filepath.Join(dir, wire.ServerInfoFile)
		b, err := os.ReadFile(path)
		if err != nil {
			if server == "" {
				return nil, fmt.Errorf("%w: %s not found; start one with `berth serve` (it writes that file); for a server started with --data-dir <dir>, set BERTH_DATA_DIR=<dir>; or set --server/BERTH_SERVER and --token/BERTH_TOKEN", client.ErrNoServer, path)
			}
			return nil, fmt.Errorf("no admin token for %s: pass --token or set BERTH_TOKEN (the server keeps it in <data-dir>/server.json)", server)
		}
		var info wire.ServerInfo
		if err := json.Unmarshal(b, &info); err != nil {
			return nil, fmt.Errorf("read %s: %w", path, err)
		}
		if server == "" {
			server = info.URL
		}
		if token == "" {
			token = info.Token
		}
	}
	return client.New(server, token).Local(g.local), nil
}

// PrintError writes err once, in plain words, the way az does ("ERROR: ...").
func PrintError(w io.Writer, err error) {
	var de *diag.Error
	if errors.As(err, &de) {
		fmt.Fprintf(w, "ERROR: (%s) %s\n", de.Code, de.Message)
		if d := de.Details; len(d) == 1 && d[0].Details == nil && strings.Contains(de.Message, d[0].Message) &&
			(d[0].Code == "" || d[0].Code == de.Code || d[0].Code == diag.BadArgument) {
			return // the one detail is already in the message
		}
		printDetails(w, de.Details, "  ")
		return
	}
	fmt.Fprintf(w, "ERROR: %s\n", err)
}

func printDetails(w io.Writer, details []*diag.Error, indent string) {
	for _, d := range details {
		prefix := ""
		if d.Target != "" {
			prefix = d.Target + ": "
		}
		if d.Code != "" && d.Code != diag.BadArgument {
			prefix = "(" + string(d.Code) + ") " + prefix
		}
		fmt.Fprintf(w, "%s- %s%s\n", indent, prefix, strings.ReplaceAll(d.Message, "\n", "\n"+indent+"  "))
		printDetails(w, d.Details, indent+"  ")
	}
}

// ExitCode is the process exit status for err: 3 when a scoring script failed to start
// (as azmlinfsrv exits), else 1.
func ExitCode(err error) int {
	if de := diag.As(err); de != nil {
		switch de.Code {
		case diag.UserScriptImportError, diag.UserScriptInitFailed, diag.UserScriptFunctionNotFound:
			return 3
		}
	}
	return 1
}
