package cli

import (
	"fmt"
	"io"
)

// printWarnings writes a spec's warnings to w (stderr), one "WARNING: ..." line each,
// the way the az CLI prints its own.
func printWarnings(w io.Writer, warnings []string) {
	for _, warning := range warnings {
		fmt.Fprintf(w, "WARNING: %s\n", warning)
	}
}
