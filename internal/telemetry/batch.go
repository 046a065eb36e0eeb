package telemetry

import "github.com/prometheus/client_golang/prometheus"

// BatchProgress is a batch job's progress as the jobs service reports it.
type BatchProgress struct {
	Job, Endpoint, Deployment string
	// Done and Failed count the mini-batches that ended so far; FilesPerSecond is the
	// pace of this run of the job.
	Done, Failed   int
	FilesPerSecond float64
	// Ended reports that the job has ended: its series are deleted, so that finished
	// jobs neither export stale values nor grow the number of series. Only Job is read.
	Ended bool
}

type batchMetrics struct {
	minibatches *prometheus.GaugeVec
	pace        *prometheus.GaugeVec
}

func newBatchMetrics(reg prometheus.Registerer) *batchMetrics {
	m := &batchMetrics{
		minibatches: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "berth_batch_job_minibatches",
			Help: "Mini-batches of a batch job that ended, by result: done (succeeded) or failed.",
		}, []string{"job", "endpoint", "deployment", "result"}),
		pace: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "berth_batch_job_files_per_second",
			Help: "Files a batch job has scored per second since this run of it started.",
		}, []string{"job", "endpoint", "deployment"}),
	}
	reg.MustRegister(m.minibatches, m.pace)
	return m
}

// BatchJob records a batch job's progress, or forgets the job once it has ended.
func (t *Telemetry) BatchJob(p BatchProgress) {
	m := t.batch
	if p.Ended {
		job := prometheus.Labels{"job": p.Job}
		m.minibatches.DeletePartialMatch(job)
		m.pace.DeletePartialMatch(job)
		return
	}
	m.minibatches.WithLabelValues(p.Job, p.Endpoint, p.Deployment, "done").Set(float64(p.Done))
	m.minibatches.WithLabelValues(p.Job, p.Endpoint, p.Deployment, "failed").Set(float64(p.Failed))
	m.pace.WithLabelValues(p.Job, p.Endpoint, p.Deployment).Set(p.FilesPerSecond)
}
