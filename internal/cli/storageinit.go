package cli

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
)

// storageInit is one run of `berth storage-initializer`: the artifacts the init
// container of a Kubernetes pod fetches from the Berth server before the inference
// server starts, as stage.Prepare lays them out for the process runtime.
type storageInit struct {
	endpoint, deployment, targetDir string
	modelArtifact, modelDir         string
	// modelBase is the name of the uploaded model folder or file (--model-base).
	modelBase             string
	codeArtifact, codeDir string
	// retryFor is how long transient network errors are retried, counted from the
	// first try of an artifact.
	retryFor time.Duration
	// backoff is the first wait between tries (firstRetryDelay when zero); it doubles.
	backoff time.Duration
	// server is the URL fetched from, as the user gave it, for messages.
	server string
	// log receives the progress lines; now stamps them.
	log io.Writer
	now func() time.Time
}

// artifact is one folder to fetch: "model" or "code", the flag that named it, its
// digest and where it goes. base, when set, is the name the folder keeps beneath dir.
type artifact struct {
	what, flag, digest, dir, base string
}

// defaultAppRoot is Azure's /var/azureml-app, where a pod's model and code live.
const defaultAppRoot = "/var/azureml-app"

func newStorageInitializerCommand(g *globals) *cobra.Command {
	si := &storageInit{now: time.Now}
	cmd := &cobra.Command{
		Use:   "storage-initializer",
		Short: "Fetch a deployment's model and code from the Berth server into a pod (its init container)",
		Long: `Fetch a deployment's model and code from the Berth server into a folder, as the init
container of a Kubernetes pod does before the inference server starts. Each artifact is
streamed from the server, checked against its digest and unpacked into its folder, which
is replaced. The token is read from BERTH_TOKEN (or --token). Network errors are retried
with backoff for --retry-for, since a pod may start before its network is ready.

  berth storage-initializer --server http://berth.example:5555 --endpoint my-endpoint \
    --deployment blue --target-dir /var/azureml-app \
    --model-artifact sha256:... --model-dir /var/azureml-app/azureml-models \
    --code-artifact sha256:... --code-dir /var/azureml-app/code`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			si.log = cmd.ErrOrStderr()
			c, err := si.connect(g)
			if err != nil {
				return err
			}
			arts, err := si.artifacts()
			if err != nil {
				return err
			}
			return si.run(cmd.Context(), c, arts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&si.endpoint, "endpoint", "", "the endpoint whose deployment this pod serves (for the log)")
	f.StringVar(&si.deployment, "deployment", "", "the deployment this pod serves (for the log)")
	f.StringVar(&si.targetDir, "target-dir", defaultAppRoot, "the folder model and code go under (created)")
	f.StringVar(&si.modelArtifact, "model-artifact", "", "digest of the model artifact (sha256:<hex>)")
	f.StringVar(&si.modelDir, "model-dir", "", "folder the model is unpacked into (default <target-dir>/azureml-models)")
	f.StringVar(&si.modelBase, "model-base", "", "name of the uploaded model folder: it lands in <model-dir>/<name>, as Azure mounts it (a single file of that name lands in <model-dir>); default: the model's files go straight into <model-dir>")
	f.StringVar(&si.codeArtifact, "code-artifact", "", "digest of the code artifact (sha256:<hex>)")
	f.StringVar(&si.codeDir, "code-dir", "", "folder the code is unpacked into (default <target-dir>/code)")
	f.DurationVar(&si.retryFor, "retry-for", 15*time.Second, "how long to retry when the server cannot be reached (0: one try)")
	return cmd
}

// connect takes the server from --server (or BERTH_SERVER) and the token from --token
// (or BERTH_TOKEN); a pod has no server.json to fall back on.
func (si *storageInit) connect(g *globals) (*client.Client, error) {
	si.server = firstNonEmpty(g.server, os.Getenv("BERTH_SERVER"))
	token := firstNonEmpty(g.token, os.Getenv("BERTH_TOKEN"))
	if si.server == "" {
		return nil, diag.New(diag.BadArgument, "--server is required: the URL of the Berth server this pod fetches model and code from")
	}
	if token == "" {
		return nil, diag.New(diag.Unauthorized, "no token: BERTH_TOKEN is empty; the pod reads it from the deployment's Secret (%s), so apply the deployment again to restore it", si.secretHint())
	}
	return client.New(si.server, token), nil
}

// secretHint names the Secret that holds the pod's token, as the Kubernetes runtime
// names it (ObjectName + "-berth-token").
func (si *storageInit) secretHint() string {
	if si.endpoint == "" || si.deployment == "" {
		return "<endpoint>-<deployment>-berth-token"
	}
	return strings.ToLower(si.endpoint+"-"+si.deployment) + "-berth-token"
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// artifacts checks the flags and returns what to fetch; every problem at once.
func (si *storageInit) artifacts() ([]artifact, error) {
	var arts []artifact
	var problems []*diag.Error
	add := func(what, digest, dir string) {
		if digest == "" {
			if dir != "" {
				problems = append(problems, diag.New(diag.BadArgument, "--%s-dir %s: given without --%s-artifact", what, dir, what))
			}
			return
		}
		if dir == "" {
			dir = filepath.Join(si.targetDir, map[string]string{"model": "azureml-models", "code": "code"}[what])
		}
		a := artifact{what: what, flag: "--" + what + "-artifact", digest: digest, dir: filepath.Clean(dir)}
		if err := checkDigest(digest); err != nil {
			problems = append(problems, diag.New(diag.BadArgument, "%s %s: %v", a.flag, digest, err))
		}
		arts = append(arts, a)
	}
	add("model", si.modelArtifact, si.modelDir)
	add("code", si.codeArtifact, si.codeDir)
	if b := si.modelBase; b != "" {
		if b == "." || b == ".." || strings.ContainsAny(b, `/\`) {
			problems = append(problems, diag.New(diag.BadArgument, "--model-base %s: want a folder or file name, without / or ..", b))
		} else if len(arts) > 0 && arts[0].what == "model" {
			arts[0].base = b
		}
	}
	if len(arts) == 2 && (within(arts[0].dir, arts[1].dir) || within(arts[1].dir, arts[0].dir)) {
		problems = append(problems, diag.New(diag.BadArgument,
			"--model-dir %s and --code-dir %s: one is inside the other, so unpacking one would replace the other; give separate folders", arts[0].dir, arts[1].dir))
	}
	switch len(problems) {
	case 0:
		return arts, nil
	case 1:
		return nil, problems[0]
	}
	return nil, &diag.Error{Code: diag.BadArgument, Message: "storage-initializer: invalid arguments", Details: problems}
}

// checkDigest accepts sha256:<64 hex digits>, the only digests the server stores.
func checkDigest(d string) error {
	h, ok := strings.CutPrefix(d, "sha256:")
	if _, err := hex.DecodeString(h); !ok || len(h) != 64 || err != nil {
		return fmt.Errorf("want sha256:<64 hex digits>")
	}
	return nil
}

// within reports whether path is dir or inside it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// run fetches every artifact in turn and logs one line for each.
func (si *storageInit) run(ctx context.Context, c *client.Client, arts []artifact) error {
	start := si.now()
	of := ""
	if si.endpoint != "" || si.deployment != "" {
		of = fmt.Sprintf(" of deployment %s/%s", si.endpoint, si.deployment)
	}
	si.logf("storage-initializer: fetching model and code%s from %s into %s", of, si.server, si.targetDir)
	if err := os.MkdirAll(si.targetDir, 0o755); err != nil {
		return fmt.Errorf("create --target-dir: %w", err)
	}
	if len(arts) == 0 {
		si.logf("no --model-artifact nor --code-artifact: nothing to fetch")
	}
	for _, a := range arts {
		if err := si.fetch(ctx, c, a); err != nil {
			return err
		}
	}
	si.logf("storage-initializer: done in %s", si.now().Sub(start).Round(time.Millisecond))
	return nil
}

// logf writes one progress line, stamped like the storage-initializer log of the
// process runtime.
func (si *storageInit) logf(format string, args ...any) {
	fmt.Fprintf(si.log, "%s %s\n", si.now().UTC().Format("2006-01-02 15:04:05,000"), fmt.Sprintf(format, args...))
}
