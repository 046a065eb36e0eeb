// Package batch owns the execution of batch scoring jobs: the input files cut into
// mini-batches, the Python workers in batch mode, retries and timeouts, the error
// threshold, the output file, Azure's log layout, and the journal that lets a job killed
// halfway resume without running a finished mini-batch again.
package batch

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/berthml/berth/internal/diag"
)

// Job is one batch job to run: every path absolute, every setting defaulted.
type Job struct {
	Name string
	// Dir is the job's own folder (jobs/<name>): the manifest of its input files, the
	// journal of finished mini-batches, their rows, and logs/ in Azure's layout. Run
	// creates it; a Dir that holds a journal is resumed.
	Dir string
	// Input is a file (InputType uri_file) or a folder (uri_folder) of input files.
	Input     string
	InputType string
	// OutputDir receives OutputFileName (append_row); summary_only scripts get it as
	// AZUREML_BI_OUTPUT_PATH.
	OutputDir string
	Settings  Settings
	Worker    Worker
	// Nodes is instance_count (already capped by the compute's max_instances): the job
	// runs Nodes × MaxConcurrencyPerInstance workers.
	Nodes int
	// Progress, when not nil, is called after every mini-batch ends, one call at a time.
	Progress func(Progress)
	// Log, when not nil, also receives the driver log's lines (logs go to Dir anyway).
	Log io.Writer
}

// Settings are a job's effective batch settings (spec §3.2 after overrides).
type Settings struct {
	MiniBatchSize             int
	MaxConcurrencyPerInstance int
	MaxRetries                int
	Timeout                   time.Duration // of one run() call
	ErrorThreshold            int           // failed files tolerated; -1 = unlimited
	OutputAction              string        // append_row | summary_only
	OutputFileName            string
	LoggingLevel              string // warning | info | debug
}

// Worker is how to start one batch worker: the same Python worker as online instances,
// in batch mode.
type Worker struct {
	Python string
	Env    []string // KEY=VALUE, the deployment's environment variables included
	// CodeDir is the working directory; EntryScript the scoring script (absolute), or
	// instance.BuiltinMLflow for an MLflow model without a script.
	CodeDir     string
	EntryScript string
	// ModelDir is AZUREML_MODEL_DIR; MLmodel the model's MLmodel file as JSON ("" if none).
	ModelDir string
	MLmodel  string
}

// Progress counts a job's mini-batches and files.
type Progress struct {
	MiniBatches, Succeeded, Failed     int
	Files, FilesSucceeded, FilesFailed int
	// Started is when this run of the job started (a resumed job starts again).
	Started time.Time
}

// Result is how a job ended.
type Result struct {
	// Status is Completed or Failed.
	Status string
	// Error says why a Failed job failed, with Azure's message (diag.UserError).
	Error    *diag.Error
	Progress Progress
}

// ErrNotImplemented is returned until the runner lands.
var ErrNotImplemented = errors.New("batch: not implemented")

// Run runs a job to its end, or until ctx ends: then it returns ctx's error and the
// job's Dir stays resumable by another Run.
func Run(ctx context.Context, j Job) (Result, error) {
	return Result{}, ErrNotImplemented
}
