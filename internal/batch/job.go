// Package batch owns the execution of batch scoring jobs: the input files cut into
// mini-batches, the Python workers in batch mode, retries and timeouts, the error
// threshold, the output file, Azure's log layout, and the journal that lets a job killed
// halfway resume without running a finished mini-batch again.
package batch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"
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
	// Remote, when not nil, runs the mini-batches in workers of other processes (the
	// pods of a Kubernetes Indexed Job) that join its slots over HTTP, rather than in
	// Python processes of this machine; Worker is then unused.
	Remote *Remote
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
	// Started is when this run of the job started (a resumed job starts again), and
	// FilesAtStart how many files were already done then (journaled by an earlier run),
	// so that a pace counts only this run's files.
	Started      time.Time
	FilesAtStart int
	// Finalizing is set in the one call made when every mini-batch has ended and the
	// output file is being written (the job's Finalizing status).
	Finalizing bool
}

// Result is how a job ended.
type Result struct {
	// Status is Completed or Failed.
	Status string
	// Error says why a Failed job failed, with Azure's message (diag.UserError).
	Error    *diag.Error
	Progress Progress
}

// Statuses of a job that ended (Result.Status).
const (
	StatusCompleted = "Completed"
	StatusFailed    = "Failed"
)

// Run runs a job to its end, or until ctx ends: then it returns ctx's error and the
// job's Dir stays resumable by another Run. A job that ends Failed is a Result with its
// *diag.Error and a nil error; the error is for what is not the job's fault (a disk
// that cannot be written).
//
// Run on a Dir that holds a manifest resumes: the same mini-batches, the journaled ones
// not run again. A job is Failed when more files failed than ErrorThreshold allows,
// when no worker could run init(), or when every mini-batch failed (nothing succeeded,
// whatever the threshold); then no output file is written.
func Run(ctx context.Context, j Job) (Result, error) {
	j.defaults()
	if err := os.MkdirAll(j.Dir, 0o755); err != nil {
		return Result{}, fmt.Errorf("batch job %s: %w", j.Name, err)
	}
	r := &runner{j: j, logs: newLogs(j), tries: map[int]int{}}
	defer r.logs.close()
	defer func() { // no worker outlives Run
		r.exiting.Wait()
		if r.endForked != nil {
			r.endForked(2 * time.Second)
		}
	}()
	r.prog.Started = time.Now()
	r.logs.readme()
	if j.Remote != nil {
		j.Remote.start(inputRoot(j))
		defer j.Remote.end()
	} else {
		var err error
		if r.entry, r.env, err = workerSetup(j); err != nil {
			return Result{}, fmt.Errorf("batch job %s: %w", j.Name, err)
		}
	}
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.stop = cancel
	// The workers start (Python, the script's import, init()) while the input is listed.
	ready := make(chan struct{})
	slots := r.startSlots(rctx, ready)
	de, err := r.prepare()
	if err != nil || de != nil {
		cancel()
		slots()
		if err != nil {
			return Result{}, ioFailure(j, err)
		}
		return r.fail(de), nil
	}
	defer r.jr.close()
	if r.failure != nil || len(r.queue) == 0 {
		cancel() // nothing to run: the slots stop their workers
	}
	close(ready)
	slots()
	r.jr.wait() // every finished mini-batch is journaled and counted
	if err := ctx.Err(); err != nil {
		r.logs.driverf("Job stopped (%v) with %d of %d mini-batches done; it resumes from there", err, len(r.done), len(r.mbs))
		return Result{Progress: r.prog}, err
	}
	if r.ioErr != nil {
		return Result{Progress: r.prog}, ioFailure(j, r.ioErr)
	}
	return r.conclude()
}

// inputRoot is the folder a job's input files are named below.
func inputRoot(j Job) string {
	if j.InputType == URIFile {
		return filepath.Dir(j.Input)
	}
	return j.Input
}

// defaults fills settings a caller left at zero.
func (j *Job) defaults() {
	s := &j.Settings
	if s.MiniBatchSize <= 0 {
		s.MiniBatchSize = 10
	}
	if s.MaxConcurrencyPerInstance <= 0 {
		s.MaxConcurrencyPerInstance = 1
	}
	if s.MaxRetries < 0 {
		s.MaxRetries = 0
	}
	if s.Timeout <= 0 {
		s.Timeout = 30 * time.Second
	}
	if s.OutputAction == "" {
		s.OutputAction = AppendRow
	}
	if s.OutputFileName == "" {
		s.OutputFileName = "predictions.csv"
	}
	if s.LoggingLevel == "" {
		s.LoggingLevel = "info"
	}
	if j.Nodes <= 0 {
		j.Nodes = 1
	}
	if j.InputType == "" {
		j.InputType = URIFolder
	}
}

// ioFailure is the error of a job whose journal could not be written: a full disk is
// OutOfQuota with the folder to free space in; the mini-batches journaled before stay in
// Dir.
func ioFailure(j Job, err error) error {
	if errors.Is(err, syscall.ENOSPC) {
		return diag.New(diag.OutOfQuota, "batch job %s: the disk holding %s is full (%v). Free space on it (or set BERTH_DATA_DIR to a larger disk) and invoke the job again.", j.Name, j.Dir, err)
	}
	return diag.New(diag.InternalServerError, "batch job %s: %v. Check that %s is writable, then invoke the job again.", j.Name, err, j.Dir)
}
