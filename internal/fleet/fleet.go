// Package fleet owns the running instances of every deployment: it applies rollout
// plans through the runtime, keeps each instance running (restarts with backoff,
// readiness and liveness probes) and reports what runs for `show` and routing.
package fleet

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/runtime"
)

// Key names a deployment.
type Key struct{ Endpoint, Deployment string }

// Config is what a Fleet needs. Runtime is required; the rest have defaults.
type Config struct {
	Runtime runtime.Runtime
	// StopGrace is how long an instance gets to exit after SIGTERM (default 5s).
	StopGrace time.Duration
	// Drain is how long replaced instances keep serving after a switch (default 2s).
	Drain time.Duration
	Log   *slog.Logger
	Now   func() time.Time
	// Changed is called whenever the routable instances of a deployment change, so a
	// new routing table can be published (nil: nobody listens).
	Changed func(ctx context.Context)
	// CrashLoop is called when an instance has restarted instance.CrashLoopRestarts
	// times in a row (nil: only logged).
	CrashLoop func(ctx context.Context, k Key, err *diag.Error)
	// FirstIndex returns the index the first instance of a deployment new to this
	// fleet gets, e.g. one past the folders an earlier server left (nil: 0).
	FirstIndex func(k Key) int
	// Stopped is called after an instance has stopped for good and left the fleet, e.g.
	// to free its folder (nil: nothing is done).
	Stopped func(k Key, index int)
}

// Fleet is every deployment's live instances. It is safe for concurrent use.
type Fleet struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	deps    map[Key]*deployment
	closed  bool
	closing chan struct{}  // closed by Close
	wg      sync.WaitGroup // keepers
}

// New returns an empty fleet.
func New(cfg Config) *Fleet {
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if cfg.Drain == 0 {
		cfg.Drain = 2 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Changed == nil {
		cfg.Changed = func(context.Context) {}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Fleet{cfg: cfg, log: log, deps: map[Key]*deployment{}, closing: make(chan struct{})}
}

// Routing is what the router needs of a deployment besides its instances.
type Routing struct {
	RequestTimeout time.Duration
	MaxConcurrent  int
	MaxQueueWait   time.Duration
}

// deployment is the live side of one deployment.
type deployment struct {
	key Key

	mu        sync.Mutex
	instances map[int]*member // every instance not yet stopped and forgotten
	serving   []int           // the routing set, in index order
	routing   Routing         // settings of the routing set
	next      int
	gate      table.Gate // in-flight count, the same in every snapshot
	progress  string     // the last step of the rollout in progress
	warnings  []string   // from the environment build, shown by `show`
	rollout   *run       // the rollout in progress, nil when none
	stopped   func(int)  // Config.Stopped for this deployment
	// lastFailed is the instance whose failure ended the last rollout (-1: none): its
	// logs say why, so `get-logs` shows it until a rollout succeeds.
	lastFailed int
}

// run is one rollout in progress.
type run struct {
	cancel context.CancelFunc
	done   chan struct{}
}

// deployment returns the live side of k, creating it when create is set and the fleet
// is not closed.
func (f *Fleet) deployment(k Key, create bool) *deployment {
	f.mu.Lock()
	defer f.mu.Unlock()
	d := f.deps[k]
	if d == nil && create && !f.closed {
		d = &deployment{key: k, instances: map[int]*member{}, lastFailed: -1, stopped: func(int) {}}
		if f.cfg.Stopped != nil {
			d.stopped = func(index int) { f.cfg.Stopped(k, index) }
		}
		if f.cfg.FirstIndex != nil {
			d.next = f.cfg.FirstIndex(k)
		}
		f.deps[k] = d
	}
	return d
}

// ReserveIndex returns a fresh instance index of the deployment, e.g. for a folder
// holding the log of a rollout that failed before any instance started.
func (f *Fleet) ReserveIndex(k Key) int {
	d := f.deployment(k, true)
	if d == nil {
		return 0 // closed: nothing starts any more
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.next++
	return d.next - 1
}

// Progress returns a writer whose last line becomes the deployment's progress (for
// the environment build's steps).
func (f *Fleet) Progress(k Key) interface{ Write([]byte) (int, error) } {
	return progressWriter{f.deployment(k, true)}
}

type progressWriter struct{ d *deployment }

func (w progressWriter) Write(p []byte) (int, error) {
	if w.d == nil {
		return len(p), nil
	}
	line := strings.TrimSpace(string(p))
	if i := strings.LastIndexByte(line, '\n'); i >= 0 {
		line = line[i+1:]
	}
	w.d.mu.Lock()
	w.d.progress = line
	w.d.mu.Unlock()
	return len(p), nil
}

// SetWarnings records the environment build's warnings and clears the progress line.
func (f *Fleet) SetWarnings(k Key, warnings []string) {
	d := f.deployment(k, true)
	if d == nil {
		return
	}
	d.mu.Lock()
	d.warnings, d.progress = slices.Clone(warnings), ""
	d.mu.Unlock()
}

// Rollout returns the last step of the deployment's rollout in progress and the
// warnings of its environment build.
func (f *Fleet) Rollout(k Key) (progress string, warnings []string) {
	d := f.deployment(k, false)
	if d == nil {
		return "", nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.progress, slices.Clone(d.warnings)
}

// InstanceStatus is the live state of one instance.
type InstanceStatus struct {
	Index    int
	State    instance.State
	Address  string
	Restarts int
	Phases   map[string]float64
}

// Instances returns the live state of the deployment's instances, in index order.
func (f *Fleet) Instances(k Key) []InstanceStatus {
	d := f.deployment(k, false)
	if d == nil {
		return nil
	}
	var out []InstanceStatus
	for _, m := range d.members() {
		out = append(out, m.status())
	}
	return out
}

// LogInstance returns the instance whose logs explain the deployment best: the newest
// one being rolled out (its log says why it is not ready yet), else the one whose
// failure ended the last rollout, else the first serving.
func (f *Fleet) LogInstance(k Key) (int, bool) {
	d := f.deployment(k, false)
	if d == nil {
		return 0, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	pending := -1
	for idx := range d.instances {
		if !slices.Contains(d.serving, idx) && idx > pending {
			pending = idx
		}
	}
	switch {
	case pending >= 0:
		return pending, true
	case d.lastFailed >= 0:
		return d.lastFailed, true
	case len(d.serving) > 0:
		return d.serving[0], true
	}
	return 0, false
}

// Table returns the deployment's routing entry: its settings, its gate and its ready
// serving instances; nil when the fleet does not know it.
func (f *Fleet) Table(k Key) *table.Deployment {
	d := f.deployment(k, false)
	if d == nil {
		return nil
	}
	d.mu.Lock()
	td := &table.Deployment{Name: k.Deployment, RequestTimeout: d.routing.RequestTimeout,
		MaxConcurrent: d.routing.MaxConcurrent, MaxQueueWait: d.routing.MaxQueueWait, Gate: &d.gate}
	serving := make([]*member, 0, len(d.serving))
	for _, idx := range d.serving {
		if m := d.instances[idx]; m != nil {
			serving = append(serving, m)
		}
	}
	d.mu.Unlock()
	for _, m := range serving {
		if e := m.readyEntry(); e != nil {
			td.Instances = append(td.Instances, e)
		}
	}
	return td
}

// members returns the deployment's instances in index order.
func (d *deployment) members() []*member {
	d.mu.Lock()
	defer d.mu.Unlock()
	keys := slices.Sorted(maps.Keys(d.instances))
	out := make([]*member, len(keys))
	for i, k := range keys {
		out[i] = d.instances[k]
	}
	return out
}
