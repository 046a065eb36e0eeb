package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/berthml/berth/internal/spec"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
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

// addSetFlags registers the az CLI's generic update arguments: --set path=value,
// --add path value... and --remove path [index]. The returned function, called before
// the sets are used, turns --add and --remove into edits carried with the sets (see
// spec.AddEdit and spec.RemoveEdit), in the order: sets, then adds, then removes.
func addSetFlags(cmd *cobra.Command, sets *[]string) func() error {
	cmd.Flags().StringArrayVar(sets, "set", nil, "override a field: --set path.to.field=value (repeatable)")
	adds := cmd.Flags().StringArray("add", nil, "append to a list: --add path.to.list <value, JSON, or key=value pairs> (repeatable)")
	removes := cmd.Flags().StringArray("remove", nil, "delete a field, or a list item: --remove path.to.field | --remove path.to.list <index> (repeatable)")
	return func() error {
		for _, a := range *adds {
			parts := strings.Split(a, "\x00")
			*sets = append(*sets, spec.AddEdit(parts[0], parts[1:]))
		}
		for _, r := range *removes {
			path, index, _ := strings.Cut(r, "\x00")
			*sets = append(*sets, spec.RemoveEdit(path, index))
		}
		return nil
	}
}

// AzArgs rewrites the az CLI's multi-word arguments into flags cobra parses:
// `--add PATH V1 [V2 ...]` (values up to the next flag) and `--remove PATH [INDEX]`
// become one flag value each. Everything else is left as it is.
func AzArgs(args []string) []string {
	out := make([]string, 0, len(args))
	for i := 0; i < len(args); i++ {
		a := args[i]
		if (a != "--add" && a != "--remove") || i+1 >= len(args) {
			out = append(out, a)
			continue
		}
		vals := []string{args[i+1]}
		j := i + 2
		for ; j < len(args) && !strings.HasPrefix(args[j], "-"); j++ {
			if a == "--remove" {
				if _, err := strconv.Atoi(args[j]); err != nil || len(vals) > 1 {
					break
				}
			}
			vals = append(vals, args[j])
		}
		out = append(out, a+"="+strings.Join(vals, "\x00"))
		i = j - 1
	}
	return out
}

// addNoWait registers --no-wait on a command whose server call returns when the
// change is done, so there is nothing to wait for.
func addNoWait(cmd *cobra.Command) {
	cmd.Flags().Bool("no-wait", false, "accepted for az compatibility: the change is done when the command returns")
}

// addWeb registers --web on a show command.
func addWeb(cmd *cobra.Command, web *bool) {
	cmd.Flags().BoolVar(web, "web", false, "print the studio URL of the page instead of the resource, and open it in a browser when stdout is a terminal")
}

// webRoot is the root (scheme and host) of a URL such as an endpoint's scoring_uri.
func webRoot(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("no page for %q: not an absolute URL", raw)
	}
	return u.Scheme + "://" + u.Host + "/", nil
}

// printWeb prints the studio URL of --web: the root of base (a URL of the server, such
// as a scoring_uri) and the studio's page, such as "endpoints/<name>" ("" = the start
// page). It then tries to open the URL.
func printWeb(cmd *cobra.Command, base, page string) error {
	root, err := webRoot(base)
	if err != nil {
		return err
	}
	if page != "" {
		root += "#/" + page
	}
	return showPage(cmd, root)
}

// showPage prints a page's URL and, when stdout is a terminal, opens it with the
// desktop's opener (xdg-open, open, or the URL handler on Windows). Failing to open is
// not an error: the URL is printed.
func showPage(cmd *cobra.Command, page string) error {
	if _, err := fmt.Fprintln(cmd.OutOrStdout(), page); err != nil {
		return err
	}
	f, ok := cmd.OutOrStdout().(*os.File)
	if !ok {
		return nil
	}
	if fi, err := f.Stat(); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return nil
	}
	name, args := "xdg-open", []string{page}
	switch runtime.GOOS {
	case "darwin":
		name = "open"
	case "windows":
		name, args = "rundll32", []string{"url.dll,FileProtocolHandler", page}
	}
	ctx, cancel := context.WithTimeout(cmd.Context(), 10*time.Second)
	defer cancel()
	exec.CommandContext(ctx, name, args...).Run()
	return nil
}
