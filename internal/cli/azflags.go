package cli

import (
	"fmt"
	"net/url"
	"runtime/debug"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthml/berth/internal/diag"
)

// defaultVersion is the version of a build without module version information
// (go build in a checkout without VCS stamping, or go run).
const defaultVersion = "dev"

// Version is berth's version: the main module's version from the build information
// (a tag, or the pseudo-version go build stamps from VCS), else "dev".
func Version() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return defaultVersion
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print berth's version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintf(cmd.OutOrStdout(), "berth %s\n", Version())
			return err
		},
	}
}

// azAliases maps the long names az ml also accepts to the flag's own name: the
// aliases do not show in --help, which names the flag as az ml's help does.
func azAliases(_ *pflag.FlagSet, name string) pflag.NormalizedName {
	switch name {
	case "endpoint":
		return "endpoint-name"
	case "deployment":
		return "deployment-name"
	case "workspace":
		return "workspace-name"
	}
	return pflag.NormalizedName(name)
}

// addAzGlobalFlags adds the az flags every command accepts and Berth ignores: one Berth
// server is one workspace, so there is no subscription, resource group or workspace
// to choose. It also installs the long-name aliases of azAliases.
func addAzGlobalFlags(root *cobra.Command) {
	const ignored = "accepted for az compatibility and ignored: one Berth server is one workspace"
	pf := root.PersistentFlags()
	pf.StringP("resource-group", "g", "", ignored)
	pf.StringP("workspace-name", "w", "", ignored)
	pf.String("subscription", "", ignored)
	pf.Bool("only-show-errors", false, "accepted for az compatibility and ignored")
}

// addSetFlags registers --set, and --add and --remove, which Berth does not support
// yet; the returned check fails when either was given.
func addSetFlags(cmd *cobra.Command, sets *[]string) func() error {
	cmd.Flags().StringArrayVar(sets, "set", nil, "override a field: --set path.to.field=value (repeatable)")
	cmd.Flags().StringArray("add", nil, "not supported yet: use --set")
	cmd.Flags().StringArray("remove", nil, "not supported yet: use --set")
	return func() error {
		for _, f := range []string{"add", "remove"} {
			if cmd.Flags().Changed(f) {
				return &diag.Error{Code: diag.BadArgument, Target: "--" + f,
					Message: fmt.Sprintf("--%s is not supported yet: use --set path.to.field=value", f)}
			}
		}
		return nil
	}
}

// addNoWait registers --no-wait on a command whose server call returns when the
// change is done, so there is nothing to wait for.
func addNoWait(cmd *cobra.Command) {
	cmd.Flags().Bool("no-wait", false, "accepted for az compatibility: the change is done when the command returns")
}

// addWeb registers --web on a show command.
func addWeb(cmd *cobra.Command, web *bool) {
	cmd.Flags().BoolVar(web, "web", false, "print the URL of the page instead of the resource (nothing opens a browser)")
}

// webRoot is the root (scheme and host) of a URL such as an endpoint's scoring_uri.
func webRoot(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("no page for %q: not an absolute URL", raw)
	}
	return u.Scheme + "://" + u.Host + "/", nil
}

// printWeb prints the page URL of --web.
func printWeb(cmd *cobra.Command, page string) error {
	root, err := webRoot(page)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), root)
	return err
}
