// Package jobs owns batch endpoints, batch deployments, computes and batch jobs on the
// control plane: it admits them into the store, resolves a job's input and settings
// when it is invoked, runs accepted jobs through the batch runner on their compute's
// share of the machine, cancels them, and resumes the unfinished ones when the server
// starts again.
package jobs

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store"
)

// Store is the persistence the service uses.
type Store interface {
	store.Computes
	store.BatchEndpoints
	store.Jobs
	// GetEndpoint finds online endpoints: one server keeps one table of endpoint names.
	GetEndpoint(ctx context.Context, name string) (*store.Endpoint, error)
}

// Config is what a Service needs. Every field is required unless noted.
type Config struct {
	Store     Store
	Registry  *registry.Registry
	Artifacts *artifacts.Store
	Stage     *stage.Stager
	// DataDir holds jobs/<name>/ and datastores/<name>/.
	DataDir string
	// BaseURL is the server's public URL, for scoring URIs and job pages.
	BaseURL func() string
	// Log receives the service's own events; nil discards them.
	Log *slog.Logger
	// Now returns the time (default time.Now).
	Now func() time.Time
	// HTTPClient downloads http(s) inputs (default: a client with a 10-minute timeout).
	HTTPClient HTTPDoer
	// Clusters checks Kubernetes computes when they are attached; nil refuses them.
	Clusters ClusterChecker
	// ClusterJobs runs jobs on Kubernetes computes; nil refuses batch deployments there.
	ClusterJobs runtime.ClusterJobs
	// PodAccess is the server URL a job's pods pull from and a token that allows
	// reading artifacts (the model and code) and serving the job's workers only.
	PodAccess func(artifacts []string, job string) (url, token string, err error)
	// Observe receives each running job's progress, for metrics (nil: nobody).
	Observe func(JobProgress)
}

// ClusterChecker checks that a Kubernetes cluster answers with the kubeconfig given
// (source names it in messages) and that namespace exists, with documented codes
// (KubernetesUnaccessible, NamespaceNotFound).
type ClusterChecker interface {
	CheckCluster(ctx context.Context, kubeconfig []byte, source, namespace string) error
}

// DefaultDatastore is the datastore every workspace has, as Azure's does.
const DefaultDatastore = "workspaceblobstore"

// Service runs batch jobs. It is safe for concurrent use.
type Service struct {
	cfg Config
	log *slog.Logger

	closed chan struct{}
	wg     sync.WaitGroup

	mu      sync.Mutex
	running map[string]*run          // jobs being run, by name
	shares  map[string]*computeShare // nodes in use per compute
}

// New returns a service and creates the default datastore. Call Recover once the
// server is up, and Close to stop every job (they resume at the next start).
func New(cfg Config) (*Service, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = defaultHTTPClient()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(filepath.Join(cfg.DataDir, "datastores", DefaultDatastore), 0o700); err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: log, closed: make(chan struct{}),
		running: map[string]*run{}, shares: map[string]*computeShare{}}, nil
}

// Close stops every running job, leaving it resumable, and waits for them.
func (s *Service) Close() {
	close(s.closed)
	s.wg.Wait()
}

// jobDir is a job's own folder.
func (s *Service) jobDir(name string) string {
	return filepath.Join(s.cfg.DataDir, "jobs", name)
}

// background runs fn until it returns, the service closes, or cancel is called.
func (s *Service) background(parent context.Context, fn func(ctx context.Context)) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		select {
		case <-s.closed:
			cancel()
		case <-ctx.Done():
		}
	}()
	go func() {
		defer s.wg.Done()
		defer cancel()
		fn(ctx)
	}()
	return cancel
}
