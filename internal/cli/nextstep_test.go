package cli

import (
	"bytes"
	"errors"
	"testing"

	"github.com/spf13/cobra"
)

func TestPrintNextNamesTheCommandThatShowsMore(t *testing.T) {
	root := NewRoot(&cobra.Command{Use: "serve"}, &cobra.Command{Use: "inference-server"})
	for _, tc := range []struct {
		args []string
		err  error
		want string
	}{
		{[]string{"online-deployment", "create", "-e", "shop", "-n", "blue"}, errors.New("boom"), "Next: `berth diagnose -e shop -n blue`\n"},
		{[]string{"online-endpoint", "invoke", "-n", "shop"}, errors.New("boom"), "Next: `berth diagnose -e shop`\n"},
		{[]string{"job", "stream", "-n", "j1"}, errors.New("boom"), "Next: `berth job show -n j1`\n"},
		{[]string{"model", "show", "-n", "m"}, errors.New("boom"), "Next: `berth model list`\n"},
		{[]string{"online-deployment", "create", "-e", "shop", "-n", "blue"}, errors.New("fix it with `berth online-deployment update -f f.yml`"), ""},
		// JOB=$(...) came back empty: -n took the next flag as its value.
		{[]string{"job", "download", "-n", "--output-name", "score"}, errors.New(`unknown command "score"`),
			"Hint: --name took \"--output-name\" as its value, so its own value is missing (an empty shell variable?): give it one, quoted, as in --name \"$VALUE\"\n"},
		{[]string{"online-deployment", "show", "-n", "-e", "shop"}, errors.New("boom"),
			"Hint: --name took \"-e\" as its value, so its own value is missing (an empty shell variable?): give it one, quoted, as in --name \"$VALUE\"\n"},
	} {
		cmd, _, err := root.Find(tc.args)
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.ParseFlags(tc.args); err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		PrintNext(&b, tc.err, cmd)
		if b.String() != tc.want {
			t.Errorf("%v: %q, want %q", tc.args, b.String(), tc.want)
		}
	}
}
