package telemetry

import (
	"math"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthml/berth/internal/wire"
)

// windowBuckets are the latency buckets of one history step: bucket i holds latencies
// up to windowBase × windowGrowth^i (0.1 ms … about 5 minutes), the last one the rest.
const (
	windowBuckets = 48
	windowBase    = 100 * time.Microsecond
	windowGrowth  = 1.37
)

// window counts one deployment's answers during the current history step: by status
// class and by latency bucket. record swaps it to zero at each step.
type window struct {
	classes [3]atomic.Int64 // 2xx (every status below 400), 4xx, 5xx
	latency [windowBuckets]atomic.Int64
}

func (w *window) add(status int, d time.Duration) {
	c := 0
	switch {
	case status >= 500:
		c = 2
	case status >= 400:
		c = 1
	}
	w.classes[c].Add(1)
	w.latency[latencyBucket(d)].Add(1)
}

func latencyBucket(d time.Duration) int {
	if d <= windowBase {
		return 0
	}
	i := int(math.Ceil(math.Log(float64(d)/float64(windowBase)) / math.Log(windowGrowth)))
	return min(i, windowBuckets-1)
}

// bucketMs is bucket i's upper bound in milliseconds.
func bucketMs(i int) float64 {
	return float64(windowBase) * math.Pow(windowGrowth, float64(i)) / float64(time.Millisecond)
}

// point is one step of a deployment's history.
type point struct {
	t        time.Time
	requests [3]int64
	p50, p99 float64 // ms
	inst     []instPoint
}

type instPoint struct {
	index int
	cpu   float64
	rss   int64
}

// ring keeps the last len(buf) points of one deployment.
type ring struct {
	buf  []point
	next int
	n    int
}

func (r *ring) add(p point) {
	r.buf[r.next] = p
	r.next = (r.next + 1) % len(r.buf)
	r.n = min(r.n+1, len(r.buf))
}

// since returns the points at or after from, oldest first.
func (r *ring) since(from time.Time) []point {
	var out []point
	for i := 0; i < r.n; i++ {
		p := r.buf[(r.next-r.n+i+len(r.buf))%len(r.buf)]
		if !p.t.Before(from) {
			out = append(out, p)
		}
	}
	return out
}

// history is every deployment's ring of points, bounded: size points each.
type history struct {
	size int
	mu   sync.Mutex
	deps map[[2]string]*ring
}

func newHistory(size int) *history {
	return &history{size: max(size, 1), deps: map[[2]string]*ring{}}
}

// record closes the current step of every deployment at now.
func (t *Telemetry) record(now time.Time) {
	inst := map[[2]string][]instPoint{}
	for _, s := range t.Instances.measure(now, true) {
		k := [2]string{s.endpoint, s.deployment}
		inst[k] = append(inst[k], instPoint{s.index, s.percent, s.rss})
	}
	h := t.history
	t.Scoring.each(func(d *Deployment) {
		if d.deployment == "" {
			return // requests refused before a deployment was chosen
		}
		p := point{t: now.UTC(), inst: inst[[2]string{d.endpoint, d.deployment}]}
		var counts [windowBuckets]int64
		var total int64
		for i := range d.win.latency {
			counts[i] = d.win.latency[i].Swap(0)
			total += counts[i]
		}
		for i := range d.win.classes {
			p.requests[i] = d.win.classes[i].Swap(0)
		}
		p.p50, p.p99 = percentile(counts, total, 0.50), percentile(counts, total, 0.99)
		k := [2]string{d.endpoint, d.deployment}
		h.mu.Lock()
		defer h.mu.Unlock()
		if d.dropped.Load() {
			return // forgotten since each listed it: its ring must not come back
		}
		r := h.deps[k]
		if r == nil {
			r = &ring{buf: make([]point, h.size)}
			h.deps[k] = r
		}
		r.add(p)
	})
}

// drop forgets a deployment's ring.
func (h *history) drop(endpoint, deployment string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.deps, [2]string{endpoint, deployment})
}

// percentile is the upper bound of the bucket that holds quantile q of total answers.
func percentile(counts [windowBuckets]int64, total int64, q float64) float64 {
	if total == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(total)))
	var acc int64
	for i, c := range counts {
		acc += c
		if acc >= rank {
			return math.Round(bucketMs(i)*1000) / 1000
		}
	}
	return bucketMs(windowBuckets - 1)
}

// History returns the endpoint's points of the last minutes, one deployment each
// (sorted by name), as GET /endpoints/{name}/metrics answers them.
func (t *Telemetry) History(endpoint string, minutes int) wire.EndpointMetrics {
	out := wire.EndpointMetrics{Endpoint: endpoint, StepSeconds: int(t.cfg.Step / time.Second), Deployments: []wire.DeploymentMetrics{}}
	from := t.cfg.Now().Add(-time.Duration(minutes) * time.Minute)
	// Every deployment in routing now is listed, with no points before its first step.
	var names []string
	for _, src := range t.loadSources() {
		src.Load(func(l DeploymentLoad) {
			if l.Endpoint == endpoint {
				names = append(names, l.Deployment)
			}
		})
	}
	h := t.history
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, name := range names {
		dm := wire.DeploymentMetrics{Name: name, Points: []wire.MetricsPoint{}}
		var points []point
		if r := h.deps[[2]string{endpoint, name}]; r != nil {
			points = r.since(from)
		}
		for _, p := range points {
			wp := wire.MetricsPoint{T: p.t.Format(time.RFC3339),
				Requests:     map[string]int64{"2xx": p.requests[0], "4xx": p.requests[1], "5xx": p.requests[2]},
				LatencyP50Ms: p.p50, LatencyP99Ms: p.p99, Instances: map[string]wire.InstanceMetrics{}}
			for _, in := range p.inst {
				wp.Instances[strconv.Itoa(in.index)] = wire.InstanceMetrics{CPUPercent: math.Round(in.cpu*10) / 10, MemoryBytes: in.rss}
			}
			dm.Points = append(dm.Points, wp)
		}
		out.Deployments = append(out.Deployments, dm)
	}
	sort.Slice(out.Deployments, func(i, j int) bool { return out.Deployments[i].Name < out.Deployments[j].Name })
	return out
}
