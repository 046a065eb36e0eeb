package cli

import (
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// PrintNext ends an error with one line, the command that shows more or fixes it, when
// the error does not already name one (`berth ...`): what failed is one command away
// from its explanation.
func PrintNext(w io.Writer, err error, cmd *cobra.Command) {
	if err == nil || cmd == nil || strings.Contains(err.Error(), "`berth ") {
		return
	}
	if next := nextStep(cmd); next != "" {
		fmt.Fprintf(w, "Next: `%s`\n", next)
	}
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
