package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
)

// DeploymentLoad is what a LoadSource reports of one deployment at a scrape.
type DeploymentLoad struct {
	Endpoint, Deployment string
	// InFlight counts the requests admitted and not yet answered (queued included);
	// Queued those waiting for a free slot on an instance.
	InFlight, Queued int64
	// Ready counts the instances in routing.
	Ready int
	// Mirror counts the copies of live requests sent to this deployment, those that
	// failed, and those dropped because too many copies were in flight.
	MirrorSent, MirrorFailed, MirrorDropped int64
}

// LoadSource reports the live load of every routed deployment (the router reads it
// from its routing snapshot; nothing is counted on the hot path for it).
type LoadSource interface {
	Load(yield func(DeploymentLoad))
}

// loadCollector reads the load sources and the live instances at each scrape.
type loadCollector struct {
	t *Telemetry

	descInFlight, descQueued, descInst, descMirror, descCPU, descCPUPct, descMem *prometheus.Desc
}

func newLoadCollector(t *Telemetry) *loadCollector {
	return &loadCollector{t: t,
		descInFlight: prometheus.NewDesc("berth_requests_in_flight", "Scoring requests admitted and not yet answered, queued ones included.", []string{"endpoint", "deployment"}, nil),
		descQueued:   prometheus.NewDesc("berth_requests_queued", "Scoring requests waiting for a free slot on an instance.", []string{"endpoint", "deployment"}, nil),
		descInst:     prometheus.NewDesc("berth_instances", "Instances by state: ready (in routing) and not_ready (started on this machine, not in routing: starting, failing probes, draining). Azure: DeploymentCapacity.", []string{"endpoint", "deployment", "state"}, nil),
		descMirror:   prometheus.NewDesc("berth_mirror_requests_total", "Copies of live requests sent to a mirror deployment, by result: sent, failed (an error or a status of 400 or more), dropped (too many copies in flight).", []string{"endpoint", "deployment", "result"}, nil),
		descCPU:      prometheus.NewDesc("berth_instance_cpu_seconds_total", "CPU time (user + system) of an instance's worker processes. Azure: CpuUtilizationPercentage is rate() × 100.", []string{"endpoint", "deployment", "instance"}, nil),
		descCPUPct:   prometheus.NewDesc("berth_instance_cpu_utilization_percent", "CPU of an instance's worker processes over the last history step (10 s), in percent of one core. Azure: CpuUtilizationPercentage.", []string{"endpoint", "deployment", "instance"}, nil),
		descMem:      prometheus.NewDesc("berth_instance_memory_bytes", "Resident memory of an instance's worker processes. Azure: MemoryUtilizationPercentage is this over the instance_type's memory.", []string{"endpoint", "deployment", "instance"}, nil),
	}
}

func (c *loadCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.descInFlight, c.descQueued, c.descInst, c.descMirror, c.descCPU, c.descCPUPct, c.descMem} {
		ch <- d
	}
}

func (c *loadCollector) Collect(ch chan<- prometheus.Metric) {
	live := c.t.Instances.counts()
	seen := map[[2]string]bool{}
	for _, src := range c.t.loadSources() {
		src.Load(func(l DeploymentLoad) {
			e, d := l.Endpoint, l.Deployment
			k := [2]string{e, d}
			seen[k] = true
			ch <- prometheus.MustNewConstMetric(c.descInFlight, prometheus.GaugeValue, float64(l.InFlight), e, d)
			ch <- prometheus.MustNewConstMetric(c.descQueued, prometheus.GaugeValue, float64(l.Queued), e, d)
			ch <- prometheus.MustNewConstMetric(c.descInst, prometheus.GaugeValue, float64(l.Ready), e, d, "ready")
			ch <- prometheus.MustNewConstMetric(c.descInst, prometheus.GaugeValue, float64(max(live[k]-l.Ready, 0)), e, d, "not_ready")
			ch <- prometheus.MustNewConstMetric(c.descMirror, prometheus.CounterValue, float64(l.MirrorSent), e, d, "sent")
			ch <- prometheus.MustNewConstMetric(c.descMirror, prometheus.CounterValue, float64(l.MirrorFailed), e, d, "failed")
			ch <- prometheus.MustNewConstMetric(c.descMirror, prometheus.CounterValue, float64(l.MirrorDropped), e, d, "dropped")
		})
	}
	for k, n := range live { // started here but not routed at all yet
		if !seen[k] {
			ch <- prometheus.MustNewConstMetric(c.descInst, prometheus.GaugeValue, 0, k[0], k[1], "ready")
			ch <- prometheus.MustNewConstMetric(c.descInst, prometheus.GaugeValue, float64(n), k[0], k[1], "not_ready")
		}
	}
	for _, s := range c.t.Instances.measure(c.t.cfg.Now(), false) {
		idx := itoa(s.index)
		ch <- prometheus.MustNewConstMetric(c.descCPU, prometheus.CounterValue, s.cpuSeconds, s.endpoint, s.deployment, idx)
		ch <- prometheus.MustNewConstMetric(c.descCPUPct, prometheus.GaugeValue, s.percent, s.endpoint, s.deployment, idx)
		ch <- prometheus.MustNewConstMetric(c.descMem, prometheus.GaugeValue, float64(s.rss), s.endpoint, s.deployment, idx)
	}
}
