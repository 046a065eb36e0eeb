package jobs

import "github.com/berthml/berth/internal/batch"

// JobProgress is a running job's progress as Config.Observe receives it, for metrics.
type JobProgress struct {
	Job, Endpoint, Deployment string
	// Done and Failed count the mini-batches that ended; FilesPerSecond is the pace of
	// this run of the job (files done since it started over the time since then).
	Done, Failed   int
	FilesPerSecond float64
	// Ended is set on the last report of a job, sent once it has ended (completed,
	// failed or canceled): the receiver forgets the job. Only Job is set with it.
	Ended bool
}

// observe passes a progress report to Config.Observe, if set.
func (s *Service) observe(name string, r *run, p batch.Progress) {
	if s.cfg.Observe == nil {
		return
	}
	var pace float64
	if el := s.cfg.Now().Sub(p.Started).Seconds(); !p.Started.IsZero() && el > 0 {
		pace = float64(max(p.FilesSucceeded+p.FilesFailed-p.FilesAtStart, 0)) / el
	}
	s.cfg.Observe(JobProgress{Job: name, Endpoint: r.endpoint, Deployment: r.deployment,
		Done: p.Succeeded, Failed: p.Failed, FilesPerSecond: pace})
}

// observeEnd tells Config.Observe, if set, that the job has ended.
func (s *Service) observeEnd(name string) {
	if s.cfg.Observe != nil {
		s.cfg.Observe(JobProgress{Job: name, Ended: true})
	}
}
