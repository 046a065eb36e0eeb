package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// PrintNext ends an error with one line, the command that shows more or fixes it, when
// the error does not already name one (`berth ...`): what failed is one command away
// from its explanation.
func PrintNext(w io.Writer, err error, cmd *cobra.Command) {
	if err == nil || cmd == nil {
		return
	}
	if hint := swallowedFlag(cmd); hint != "" {
		fmt.Fprintln(w, hint) // the real cause, whatever the error says
		return
	}
	if strings.Contains(err.Error(), "`berth ") {
		return
	}
	if next := nextStep(cmd); next != "" {
		fmt.Fprintf(w, "Next: `%s`\n", next)
	}
}

// swallowedFlag explains a flag whose value is another flag of cmd (-n --output-name):
// its own value was missing, most often an empty shell variable, so the flag after it
// was taken as its value and that flag's value became a stray argument. "" otherwise.
func swallowedFlag(cmd *cobra.Command) string {
	hint := ""
	cmd.Flags().Visit(func(f *pflag.Flag) {
		v := f.Value.String()
		if hint != "" || f.Value.Type() != "string" || !strings.HasPrefix(v, "-") {
			return
		}
		name, _, _ := strings.Cut(strings.TrimLeft(v, "-"), "=")
		other := cmd.Flags().Lookup(name)
		if other == nil && len(name) == 1 && !strings.HasPrefix(v, "--") {
			other = cmd.Flags().ShorthandLookup(name)
		}
		if other == nil {
			return
		}
		hint = fmt.Sprintf("Hint: --%s took %q as its value, so its own value is missing (an empty shell variable?): give it one, quoted, as in --%s \"$VALUE\"", f.Name, v, f.Name)
	})
	return hint
}

// nextStep is the command that shows more about what cmd was doing.
func nextStep(cmd *cobra.Command) string {
	flag := func(name string) string {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	name, endpoint := flag("name"), flag("endpoint-name")
	noun := ""
	if p := cmd.Parent(); p != nil && p.Parent() != nil {
		noun = p.Name()
	}
	switch {
	case cmd.Hidden:
		return "" // run by pods, not by people: `--help` is no help there
	case noun == "online-deployment" && endpoint != "" && name != "":
		return fmt.Sprintf("berth diagnose -e %s -n %s", endpoint, name)
	case noun == "online-deployment" && endpoint != "":
		return fmt.Sprintf("berth diagnose -e %s", endpoint)
	case noun == "online-endpoint" && name != "":
		return fmt.Sprintf("berth diagnose -e %s", name)
	case noun == "batch-deployment" && endpoint != "" && name != "":
		return fmt.Sprintf("berth batch-deployment show -e %s -n %s", endpoint, name)
	case noun == "batch-endpoint" && name != "":
		return fmt.Sprintf("berth batch-endpoint show -n %s", name)
	case noun == "job" && name != "":
		return fmt.Sprintf("berth job show -n %s", name)
	case noun == "compute", noun == "model", noun == "environment", noun == "data", noun == "connection":
		return fmt.Sprintf("berth %s list", noun)
	}
	return cmd.CommandPath() + " --help"
}
