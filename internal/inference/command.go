package inference

import (
	"os"
	"strconv"

	"github.com/spf13/cobra"
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
			if !cmd.Flags().Changed("worker_count") {
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
		python = "python3"
	}
	f := cmd.Flags()
	f.StringVar(&cfg.EntryScript, "entry_script", "", "the scoring script (env AZUREML_ENTRY_SCRIPT)")
	f.StringVar(&cfg.ModelDir, "model_dir", "", "the model folder, given to score.py as AZUREML_MODEL_DIR")
	f.IntVar(&cfg.Port, "port", 5001, "port to serve on")
	f.IntVar(&cfg.WorkerCount, "worker_count", 1, "Python worker processes (env WORKER_COUNT)")
	f.StringVar(&cfg.Host, "host", "0.0.0.0", "address to bind")
	f.StringVar(&cfg.Python, "python", python, "Python interpreter (env BERTH_PYTHON)")
	f.StringVar(&cfg.StatusFile, "status_file", "", "write a startup failure here as JSON (used by berth serve)")
	return cmd
}
