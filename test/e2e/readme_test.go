//go:build unix

package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeUsingIt runs every ```sh block of the README's "Using it" section (from
// "## Using it" to the next "## " heading), in order, as one bash script with
// `set -euo pipefail`, so the README cannot drift from the code. The conventions:
//
//   - The script runs in a temp dir holding a copy of examples/ and ./berth, a symlink
//     to the binary TestMain built; the README's `go build -o berth ./cmd/berth` line is
//     therefore commented out (the test fails if that line changes).
//   - BERTH_DATA_DIR is a fresh temp dir and BERTH_ADDR=127.0.0.1:0, so the README's own
//     `./berth serve ... &` line runs as written on a free port; the test adds a wait for
//     server.json after it, and the script's EXIT trap stops the server with SIGTERM.
//   - A command whose trailing comment starts with `# fails` must exit non-zero.
//   - TMPDIR is a temp dir, so the README's `mktemp -d` leaves nothing behind.
//
// If /usr/bin/python3 lacks scikit-learn, the blocks naming examples/sklearn-regression
// are left out and the test is marked skipped after the rest has passed.
func TestReadmeUsingIt(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := shBlocks(t, usingItSection(t, string(readme)))
	if _, err := os.Stat("/usr/bin/python3"); err != nil {
		t.Skip("/usr/bin/python3 is missing; the README's server runs it: apt-get install python3 python3-sklearn")
	}
	skipSklearn := exec.Command("/usr/bin/python3", "-c", "import sklearn").Run() != nil
	if skipSklearn {
		var kept []string
		for _, b := range blocks {
			if !strings.Contains(b, "examples/sklearn-regression") {
				kept = append(kept, b)
			}
		}
		blocks = kept
	}

	work := t.TempDir()
	dataDir := filepath.Join(work, "data")
	tmp := filepath.Join(work, "tmp")
	run := filepath.Join(work, "run")
	for _, d := range []string{tmp, run} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := exec.Command("cp", "-r", filepath.Join(repoRoot(), "examples"), run).Run(); err != nil {
		t.Fatalf("copy examples: %v", err)
	}
	if err := os.Symlink(berthBin, filepath.Join(run, "berth")); err != nil {
		t.Fatal(err)
	}
	script := readmeScript(t, blocks)
	scriptPath := filepath.Join(work, "readme.sh")
	if err := os.WriteFile(scriptPath, []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}

	out, err := runReadmeScript(scriptPath, run, dataDir, tmp)
	if err != nil {
		t.Fatalf("the README's \"Using it\" commands failed: %v\n--- script ---\n%s\n--- output ---\n%s", err, script, out)
	}
	t.Logf("output:\n%s", out)

	// What the README says the commands print.
	want := []string{
		"[7.0, 1.5]",                // the quickstart, by invoke and by curl
		"UserScriptInitFailed",      // the deployment broken on purpose
		"No such file or directory", // its traceback, from diagnose and get-logs
	}
	if !skipSklearn {
		want = append(want, "[182.64", "91.46") // the scikit-learn example
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("the output of the README's commands lacks %q", w)
		}
	}
	if n := strings.Count(out, "[7.0, 1.5]"); n < 3 {
		t.Errorf("the quickstart's prediction [7.0, 1.5] was printed %d times; want 3 (invoke, curl, invoke -d green)", n)
	}
	rows, err := os.ReadFile(filepath.Join(run, "named-outputs", "score", "predictions.csv"))
	if err != nil || !strings.Contains(string(rows), "sample_00.csv 0 12.50") {
		t.Errorf("the batch block's job download wrote no predictions.csv with the row the README names (sample_00.csv 0 12.50): %v\n%s", err, rows)
	}
	if t.Failed() {
		t.Logf("script:\n%s", script)
	}
	if skipSklearn {
		t.Skip("ran the README without its scikit-learn example: /usr/bin/python3 lacks scikit-learn (apt-get install python3-sklearn)")
	}
}

// usingItSection returns the README from "## Using it" up to the next "## " heading.
func usingItSection(t *testing.T, readme string) string {
	t.Helper()
	start := strings.Index(readme, "\n## Using it\n")
	if start < 0 {
		t.Fatal(`README.md has no "## Using it" section`)
	}
	section := readme[start+1:]
	if end := strings.Index(section[len("## Using it\n"):], "\n## "); end >= 0 {
		section = section[:len("## Using it\n")+end+1]
	}
	return section
}

// shBlocks returns the bodies of the ```sh fenced blocks of section, in order.
func shBlocks(t *testing.T, section string) []string {
	t.Helper()
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(section, "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in, cur = true, nil
		case in && strings.TrimSpace(line) == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n"))
		case in:
			cur = append(cur, line)
		}
	}
	if in {
		t.Fatal(`README.md: a sh block of "Using it" is not closed`)
	}
	if len(blocks) == 0 {
		t.Fatal(`README.md: "Using it" has no sh block`)
	}
	return blocks
}

var (
	readmeServe = regexp.MustCompile(`^\./berth serve\b[^#]*&\s*(#.*)?$`)
	readmeFails = regexp.MustCompile(`^(.*?)\s+#\s*fails\b.*$`)
)

const readmeBuildLine = "go build -o berth ./cmd/berth"

// readmePreamble starts the script: strict mode, a wait for the server the README
// starts, and a trap that stops it.
const readmePreamble = `set -euo pipefail
readme_wait_server() {
  for _ in $(seq 1 300); do
    [ -s "$BERTH_DATA_DIR/server.json" ] && return 0
    kill -0 "$1" 2>/dev/null || { echo "README test: berth serve exited" >&2; return 1; }
    sleep 0.05
  done
  echo "README test: berth serve wrote no server.json in 15s" >&2
  return 1
}
readme_stop_servers() {
  local p
  for p in $(jobs -p); do kill -TERM "$p" 2>/dev/null || true; done
  wait || true
}
trap readme_stop_servers EXIT
`

// readmeScript turns the blocks into one script by the conventions of TestReadmeUsingIt.
func readmeScript(t *testing.T, blocks []string) string {
	t.Helper()
	var b strings.Builder
	b.WriteString(readmePreamble)
	builds, serves := 0, 0
	for i, block := range blocks {
		fmt.Fprintf(&b, "\n# --- README sh block %d ---\n", i+1)
		// Join continuation lines so that each command is one line.
		for _, line := range strings.Split(strings.ReplaceAll(block, "\\\n", " "), "\n") {
			trimmed := strings.TrimSpace(line)
			switch {
			case strings.HasPrefix(trimmed, "go build"):
				if trimmed != readmeBuildLine {
					t.Fatalf("README: the build line is %q; TestMain builds with %q: change both", trimmed, readmeBuildLine)
				}
				builds++
				fmt.Fprintf(&b, "# (built by TestMain) %s\n", line)
			case readmeServe.MatchString(trimmed):
				serves++
				fmt.Fprintf(&b, "%s\nreadme_wait_server $!\n", line)
			case readmeFails.MatchString(trimmed):
				cmd := readmeFails.FindStringSubmatch(trimmed)[1]
				fmt.Fprintf(&b, "if %s; then echo %q >&2; exit 1; fi\n", cmd, "README test: expected to fail, but succeeded: "+cmd)
			default:
				b.WriteString(line + "\n")
			}
		}
	}
	if builds == 0 || serves == 0 {
		t.Fatalf("README: \"Using it\" must build berth (%q) and start `./berth serve ... &`; found %d build and %d serve lines", readmeBuildLine, builds, serves)
	}
	return b.String()
}

// runReadmeScript runs the script with bash in dir against dataDir and returns its
// combined output. On a timeout the whole process group gets SIGTERM, then SIGKILL.
func runReadmeScript(script, dir, dataDir, tmp string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = dir
	var env []string
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); k != "BERTH_SERVER" && k != "BERTH_TOKEN" && k != "BERTH_PYTHON" {
			env = append(env, kv)
		}
	}
	// Last wins: these replace any value from the environment.
	cmd.Env = append(env, "BERTH_DATA_DIR="+dataDir, "BERTH_ADDR=127.0.0.1:0", "TMPDIR="+tmp)
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
	cmd.WaitDelay = 30 * time.Second
	err := cmd.Run()
	if err != nil && cmd.Process != nil {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	return out.String(), err
}
