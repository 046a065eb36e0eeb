package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/berthml/berth/internal/batch"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// GetJob returns a job with its latest counts, or JobNotFound.
func (s *Service) GetJob(ctx context.Context, name string) (*store.Job, error) {
	j, err := s.cfg.Store.GetJob(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, &diag.Error{Code: diag.JobNotFound, Target: name,
			Message: fmt.Sprintf("job %q does not exist: see `berth job list`", name)}
	}
	if err != nil {
		return nil, err
	}
	s.live(j)
	return j, nil
}

// ListJobs returns the jobs of an endpoint (all when ""), of one of its deployments
// when deployment is not "", newest first.
func (s *Service) ListJobs(ctx context.Context, endpoint, deployment string) ([]*store.Job, error) {
	if endpoint != "" {
		if _, err := s.GetBatchEndpoint(ctx, endpoint); err != nil {
			return nil, err
		}
	}
	if deployment != "" {
		if _, err := s.GetBatchDeployment(ctx, endpoint, deployment); err != nil {
			return nil, err
		}
	}
	all, err := s.cfg.Store.ListJobs(ctx, endpoint, deployment)
	for _, j := range all {
		s.live(j)
	}
	return all, err
}

// live puts the in-memory counts of a running job in its record.
func (s *Service) live(j *store.Job) {
	s.mu.Lock()
	r := s.running[j.Name]
	s.mu.Unlock()
	if r == nil {
		return
	}
	if p := r.progress.Load(); p != nil {
		j.Progress, _ = json.Marshal(p)
	}
}

// CancelJob stops a job's workers and marks it Canceled. A job that has ended is
// returned as it is.
func (s *Service) CancelJob(ctx context.Context, name string) (*store.Job, error) {
	j, err := s.GetJob(ctx, name)
	if err != nil || wire.JobTerminal(j.Status) {
		return j, err
	}
	s.mu.Lock()
	r := s.running[name]
	s.mu.Unlock()
	status := wire.JobCanceled
	if r != nil {
		status = wire.JobCancelRequested
	}
	if _, err := s.cfg.Store.UpdateJob(ctx, name, func(j *store.Job) error {
		if !wire.JobTerminal(j.Status) {
			j.Status = status
			if status == wire.JobCanceled {
				j.EndedAt = s.cfg.Now()
			}
		}
		return nil
	}); err != nil {
		return nil, err
	}
	if r != nil {
		r.canceled.Store(true)
		r.cancel()
	}
	return s.GetJob(ctx, name)
}

// cancelWhere cancels the running jobs that match.
func (s *Service) cancelWhere(ctx context.Context, match func(*run) bool) {
	s.mu.Lock()
	var names []string
	for name, r := range s.running {
		if match(r) {
			names = append(names, name)
		}
	}
	s.mu.Unlock()
	for _, n := range names {
		if _, err := s.CancelJob(context.WithoutCancel(ctx), n); err != nil {
			s.log.Warn("batch job: cancel", "job", n, "err", err)
		}
	}
}

// Recover resumes every job that had not ended when the server stopped; a job whose
// cancel was asked for ends Canceled.
func (s *Service) Recover(ctx context.Context) error {
	all, err := s.cfg.Store.ListJobs(ctx, "", "")
	if err != nil {
		return err
	}
	for _, j := range all {
		if wire.JobTerminal(j.Status) {
			continue
		}
		if j.Status == wire.JobCancelRequested {
			s.end(ctx, j.Name, &run{}, wire.JobCanceled, nil, batch.Progress{})
			continue
		}
		var js jobSpec
		if err := json.Unmarshal(j.Spec, &js); err != nil {
			s.end(ctx, j.Name, &run{}, wire.JobFailed, fmt.Errorf("stored job: %w", err), batch.Progress{})
			continue
		}
		s.log.Info("batch job: resuming", "job", j.Name, "status", j.Status)
		s.start(ctx, j, js)
	}
	return nil
}

// maxLogChunk bounds one JobLog answer.
const maxLogChunk = 1 << 20

// JobLog returns the job's driver log from byte offset on (at most 1 MiB) and the
// offset after it.
func (s *Service) JobLog(ctx context.Context, name string, offset int64) ([]byte, int64, error) {
	if _, err := s.GetJob(ctx, name); err != nil {
		return nil, 0, err
	}
	f, err := os.Open(driverLog(s.jobDir(name)))
	if errors.Is(err, os.ErrNotExist) {
		return nil, offset, nil
	}
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, 0, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxLogChunk))
	return b, offset + int64(len(b)), err
}

// OutputFolder is the folder of a job's named output: "score" (the model
// deployment's output) or "logs" (the job's logs in Azure's layout).
func (s *Service) OutputFolder(ctx context.Context, name, output string) (string, error) {
	j, err := s.GetJob(ctx, name)
	if err != nil {
		return "", err
	}
	switch output {
	case "logs":
		return filepath.Join(s.jobDir(name), "logs"), nil
	case OutputName, "":
		var js jobSpec
		if err := json.Unmarshal(j.Spec, &js); err != nil {
			return "", err
		}
		return js.OutputDir, nil
	}
	return "", &diag.Error{Code: diag.BadArgument, Target: output,
		Message: fmt.Sprintf("job %q has no output named %q: its outputs are %q and %q", name, output, OutputName, "logs")}
}

// Settings returns the effective settings and the input of a job, for show.
func Settings(j *store.Job) (set batch.Settings, in wire.JobInput, outputDir, experiment string) {
	var js jobSpec
	_ = json.Unmarshal(j.Spec, &js)
	return js.Settings, js.Input, js.OutputDir, js.ExperimentName
}

// ProgressView is a job's stored counts in the wire shape, with its pace: the files of
// this run (a resumed job's earlier ones left out) per second until now or its end.
func ProgressView(j *store.Job, now time.Time) wire.JobProgress {
	var p batch.Progress
	if len(j.Progress) == 0 || json.Unmarshal(j.Progress, &p) != nil {
		return wire.JobProgress{}
	}
	v := wire.JobProgress{MiniBatches: p.MiniBatches, MiniBatchesDone: p.Succeeded, MiniBatchesFailed: p.Failed,
		Files: p.Files, FilesDone: p.FilesSucceeded, FilesFailed: p.FilesFailed}
	if !j.EndedAt.IsZero() {
		now = j.EndedAt
	}
	if secs := now.Sub(p.Started).Seconds(); !p.Started.IsZero() && secs > 0 {
		done := p.FilesSucceeded + p.FilesFailed
		v.FilesPerSecond = float64(done-p.FilesAtStart) / secs
		if v.FilesPerSecond > 0 && done < p.Files {
			v.ETASeconds = float64(p.Files-done) / v.FilesPerSecond
		}
	}
	return v
}
