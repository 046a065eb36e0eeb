package batch

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/inference"
	"github.com/berthml/berth/internal/instance"
)

// Names of `berth batch-worker`'s flags and variables, shared with the pod spec that
// runs it (runtime/kubernetes).
const (
	// CompletionIndexEnv is the variable Kubernetes sets in each pod of an Indexed Job.
	CompletionIndexEnv = "JOB_COMPLETION_INDEX"
	// TokenEnv holds the token the pod authenticates with (from the job's Secret).
	TokenEnv = "BERTH_TOKEN"
)

// NewPodCommand returns `berth batch-worker`, the main container of a batch job's pods
// on a Kubernetes compute: it runs --processes Python workers that pull the job's
// mini-batches from the Berth server until it has none left.
func NewPodCommand() *cobra.Command {
	var cfg PodConfig
	var timeout float64
	var python, entry, modelDir, level, node string
	cmd := &cobra.Command{
		Use:    "batch-worker",
		Short:  "Run a batch job's workers in a pod of a Kubernetes compute (started by Berth)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			n, err := strconv.Atoi(node)
			if err != nil || n < 0 {
				return fmt.Errorf("--node %q (or %s): want the pod's completion index, a number ≥ 0", node, CompletionIndexEnv)
			}
			cfg.Node = n
			cfg.Token = os.Getenv(TokenEnv)
			cfg.Timeout = time.Duration(timeout * float64(time.Second))
			dir, err := os.Getwd()
			if err != nil {
				return err
			}
			cfg.Worker = inference.BatchWorkerConfig{Python: python, EntryScript: entry, Dir: dir, LoggingLevel: level,
				Env: []string{"AZUREML_MODEL_DIR=" + modelDir}}
			cfg.Log = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil)).With("job", cfg.Job, "node", n)
			cfg.Log.Info("batch worker starting", "server", cfg.Server, "processes", cfg.Processes)
			if err := RunPod(cmd.Context(), cfg); err != nil {
				return err
			}
			cfg.Log.Info("no more mini-batches: done")
			return nil
		},
	}
	defPython := os.Getenv("BERTH_PYTHON")
	if defPython == "" {
		defPython = instance.DefaultPython
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Server, "server", "", "the Berth server's URL")
	f.StringVar(&cfg.Job, "job", "", "the job's name")
	f.StringVar(&cfg.Run, "run", "", "the id of the job's run this pod serves")
	f.StringVar(&node, "node", os.Getenv(CompletionIndexEnv), "the pod's completion index (env "+CompletionIndexEnv+")")
	f.IntVar(&cfg.Processes, "processes", 1, "Python workers in this pod (max_concurrency_per_instance)")
	f.StringVar(&entry, "entry_script", "", "the scoring script (absolute)")
	f.StringVar(&modelDir, "model_dir", "", "AZUREML_MODEL_DIR")
	f.Float64Var(&timeout, "timeout", 30, "seconds one run() call may take (the job's timeout)")
	f.StringVar(&level, "logging_level", "info", "the script's --logging_level")
	f.StringVar(&python, "python", defPython, "Python interpreter (env BERTH_PYTHON)")
	f.StringVar(&cfg.WorkDir, "work-dir", filepath.Join(os.TempDir(), "berth-batch"), "where mini-batch files are unpacked while they run")
	f.DurationVar(&cfg.RetryFor, "retry-for", 10*time.Minute, "how long to retry a server that does not answer")
	for _, name := range []string{"server", "job", "entry_script"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}
