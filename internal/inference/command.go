package inference

import (
	"os"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/instance"
)

// NewCommand returns `berth inference-server`, the drop-in for azmlinfsrv.
func NewCommand() *cobra.Command {
	var cfg Config
	cmd := &cobra.Command{
		Use:   "inference-server",
		Short: "Serve one score.py over HTTP, standalone, like azmlinfsrv (for debugging a scoring script)",
		Long: `Serve a scoring script exactly as an instance of a deployment does: GET / (health),
GET|POST /score (run()), GET /swagger.json. Flags are named as azmlinfsrv names them:

  berth inference-server --entry_script score.py --model_dir ./model-root`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.EntryScript == "" {
				cfg.EntryScript = os.Getenv("AZUREML_ENTRY_SCRIPT")
			}
			if cfg.ModelDir == "" {
				cfg.ModelDir = os.Getenv("AZUREML_MODEL_DIR")
			}
			if !cmd.Flags().Changed(instance.FlagWorkerCount) {
				if n, err := strconv.Atoi(os.Getenv("WORKER_COUNT")); err == nil && n > 0 {
					cfg.WorkerCount = n
				}
			}
			cfg.Log = cmd.OutOrStdout()
			return Serve(cmd.Context(), cfg)
		},
	}
	python := os.Getenv("BERTH_PYTHON")
	if python == "" {
		python = instance.DefaultPython
	}
	f := cmd.Flags()
	f.StringVar(&cfg.EntryScript, instance.FlagEntryScript, "", "the scoring script (env AZUREML_ENTRY_SCRIPT)")
	f.StringVar(&cfg.ModelDir, instance.FlagModelDir, "", "the model folder, given to score.py as AZUREML_MODEL_DIR")
	f.IntVar(&cfg.Port, instance.FlagPort, 5001, "port to serve on")
	f.IntVar(&cfg.WorkerCount, instance.FlagWorkerCount, 1, "Python worker processes (env WORKER_COUNT)")
	f.StringVar(&cfg.Host, instance.FlagHost, "0.0.0.0", "address to bind")
	f.StringVar(&cfg.Python, instance.FlagPython, python, "Python interpreter (env BERTH_PYTHON)")
	f.StringVar(&cfg.StatusFile, instance.FlagStatusFile, "", "write the startup status here as JSON: the error, or the phase timings (used by berth serve)")
	return cmd
}
