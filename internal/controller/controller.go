// Package controller ties the control plane together: it admits endpoint and
// deployment changes into the store, asks the registry, quota and environment
// builder, hands each deployment's desired state to the fleet, records operations and
// publishes the routing table the router reads.
package controller

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/fleet"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/quota"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// Store is the persistence the controller uses.
type Store interface {
	store.Endpoints
	store.Deployments
	store.Operations
}

// Config is what a Controller needs. Every field is required unless noted.
type Config struct {
	Store     Store
	Registry  *registry.Registry
	Artifacts *artifacts.Store
	Runtime   runtime.Runtime
	// DataDir holds instances/<endpoint>/<deployment>/<n>/.
	DataDir string
	// Python is the interpreter instances run score.py with.
	Python string
	// Publish receives every new routing snapshot.
	Publish func(*table.Table)
	// Log receives the controller's own events; nil discards them.
	Log *slog.Logger
	// StopGrace is how long an instance gets to exit after SIGTERM (0: the fleet's default).
	StopGrace time.Duration
	// Drain is how long replaced instances keep serving after a switch (0: the fleet's default).
	Drain time.Duration
	// Now returns the time (default time.Now).
	Now func() time.Time
	// Quota checks instance types and the host's limits.
	Quota quota.Checker
	// Envs builds Python environments from conda files (nil: conda files are not built).
	Envs *envbuild.Builder
	// Clusters runs deployments of endpoints on Kubernetes computes, which Computes
	// holds (both nil: online endpoints run on this machine only).
	Clusters runtime.Clusters
	Computes ComputeStore
	// PodAccess is the server URL pods fetch artifacts from and a token that allows
	// reading those artifacts only (nil: pods get neither, and their storage
	// initializer says so).
	PodAccess func(artifacts []string, job string) (url, token string, err error)
	// Operated is told of every finished deployment operation, "provision" (a create,
	// an update, a scale) or "delete": when it began, its phases (a provision on this
	// machine), and its failure (nil: nobody listens). It feeds metrics and traces.
	Operated func(ctx context.Context, op, endpoint, deployment string, start time.Time, phases []wire.Phase, failure error)
}

// ComputeStore reads the computes endpoints name.
type ComputeStore interface {
	GetCompute(ctx context.Context, name string) (*store.Compute, error)
}

// Controller applies endpoint and deployment changes. It is safe for concurrent use.
type Controller struct {
	cfg   Config
	log   *slog.Logger
	fleet *fleet.Fleet
	stage *stage.Stager

	closed chan struct{} // closed by Close: background work stops
	wg     sync.WaitGroup

	mu         sync.Mutex
	provisions map[fleet.Key]*provisionRun  // the provision in progress per deployment
	gens       map[fleet.Key]string         // the generation each deployment serves
	clusters   map[fleet.Key]*clusterRun    // deployments served by a Kubernetes compute
	scalers    map[fleet.Key]*processScaler // autoscalers of deployments on this machine
	nextGen    int

	publishMu sync.Mutex
	phases    phaseLog // the latest provision's phases per deployment
}

// New returns a controller. Call Recover once the server is up, and Close to stop every instance.
func New(cfg Config) *Controller {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Python == "" {
		cfg.Python = instance.DefaultPython
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Controller{cfg: cfg, log: log, closed: make(chan struct{}),
		provisions: map[fleet.Key]*provisionRun{}, gens: map[fleet.Key]string{},
		clusters: map[fleet.Key]*clusterRun{}, scalers: map[fleet.Key]*processScaler{}}
	c.stage = stage.New(stage.Config{Artifacts: cfg.Artifacts, Registry: cfg.Registry, Envs: cfg.Envs,
		Quota: cfg.Quota, Python: cfg.Python, Now: cfg.Now})
	c.fleet = fleet.New(fleet.Config{
		Runtime: cfg.Runtime, StopGrace: cfg.StopGrace, Drain: cfg.Drain, Log: log, Now: cfg.Now,
		Changed:    c.publish,
		CrashLoop:  c.crashLoop,
		FirstIndex: c.firstIndex,
		Stopped:    c.pruneInstance,
	})
	return c
}

// Close stops all background work and every instance, and waits for them.
func (c *Controller) Close() {
	close(c.closed)
	c.wg.Wait() // provisions end first, so none starts an instance after the fleet stops
	c.fleet.Close()
}

// background runs fn after the request that started it has returned: its context
// keeps the caller's values, ends when the controller closes or cancel is called.
func (c *Controller) background(parent context.Context, fn func(ctx context.Context)) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		select {
		case <-c.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer c.wg.Done()
		defer cancel()
		fn(ctx)
	}()
	return cancel
}

// instancesDir is where a deployment's instance folders are.
func (c *Controller) instancesDir(k fleet.Key) string {
	return filepath.Join(c.cfg.DataDir, "instances", k.Endpoint, k.Deployment)
}

// firstIndex continues instance numbering after the folders an earlier server left, and
// frees those folders: their instances are gone (their logs stay).
func (c *Controller) firstIndex(k fleet.Key) int {
	next := 0
	entries, _ := os.ReadDir(c.instancesDir(k))
	for _, e := range entries {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			next = max(next, n+1)
			c.freeCopies(k, n) // called under the fleet's lock: touches files only
		}
	}
	return next
}

// pruneInstance frees the folder of an instance that has stopped for good (its copies
// go, its logs stay), then keeps the deployment's old logs under their cap.
func (c *Controller) pruneInstance(k fleet.Key, index int) {
	c.freeCopies(k, index)
	c.capLogs(k)
}

// freeCopies removes an instance's model and code copies; its logs and status file stay
// for `get-logs` and `diagnose`.
func (c *Controller) freeCopies(k fleet.Key, index int) {
	dir := c.instanceDir(k, index)
	for _, sub := range []string{"azureml-models", "code"} {
		if err := os.RemoveAll(filepath.Join(dir, sub)); err != nil {
			c.log.Warn("free a stopped instance's folder", "endpoint", k.Endpoint, "deployment", k.Deployment, "instance", index, "err", err)
		}
	}
}

// maxStoppedLogs is how many bytes of logs of stopped instances a deployment keeps.
const maxStoppedLogs = 50 << 20

// capLogs deletes the folders of the oldest stopped instances of a deployment while their
// logs together are over maxStoppedLogs.
func (c *Controller) capLogs(k fleet.Key) {
	running := map[int]bool{}
	for _, in := range c.fleet.Instances(k) {
		running[in.Index] = true
	}
	var stopped []int
	sizes := map[int]int64{}
	var total int64
	for _, index := range c.logInstances(k) {
		if running[index] {
			continue
		}
		filepath.WalkDir(c.instanceDir(k, index), func(_ string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if info, err := d.Info(); err == nil {
					sizes[index] += info.Size()
				}
			}
			return nil
		})
		stopped = append(stopped, index)
		total += sizes[index]
	}
	for _, index := range stopped {
		if total <= maxStoppedLogs {
			return
		}
		if err := os.RemoveAll(c.instanceDir(k, index)); err != nil {
			c.log.Warn("remove the logs of an old instance", "endpoint", k.Endpoint, "deployment", k.Deployment, "instance", index, "err", err)
			continue
		}
		total -= sizes[index]
	}
}

// EnvironmentBuildLog returns the build log of a registered environment, if a deployment
// has built it on this server with the current settings.
func (c *Controller) EnvironmentBuildLog(a *store.Asset) string { return c.stage.BuildLog(a) }
