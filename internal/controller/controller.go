// Package controller owns the desired → actual loop of online endpoints: it persists
// what the user asked for, drives each deployment through its provisioning states,
// keeps its instances running and publishes the routing table the router reads.
package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
)

// Provisioning states, as Azure names them.
const (
	StateCreating  = "Creating"
	StateUpdating  = "Updating"
	StateDeleting  = "Deleting"
	StateSucceeded = "Succeeded"
	StateFailed    = "Failed"
)

// Config is what a Controller needs. Every field is required unless noted.
type Config struct {
	Store     store.Store
	Artifacts *artifacts.Store
	Runtime   runtime.Runtime
	// DataDir holds instances/<endpoint>/<deployment>/<n>/.
	DataDir string
	// Python is the interpreter instances run score.py with ("" = python3).
	Python string
	// Publish receives every new routing snapshot.
	Publish func(*table.Table)
	// Log receives the controller's own events; nil discards them.
	Log *slog.Logger
	// StopGrace is how long an instance gets to exit after SIGTERM (default 5s).
	StopGrace time.Duration
	// Now returns the time (default time.Now).
	Now func() time.Time
	// InstanceTypes maps lower-case instance_type names to their sizes (default DefaultInstanceTypes).
	InstanceTypes map[string]InstanceType
	// Quota is what all deployments together may use.
	Quota Quota
	// Sealer encrypts connection credentials at rest.
	Sealer *auth.Sealer
	// Envs builds Python environments from conda files (nil: conda files are not built).
	Envs *envbuild.Builder
}

// Controller applies endpoint and deployment changes. It is safe for concurrent use.
type Controller struct {
	cfg Config
	log *slog.Logger

	ctx    context.Context // lifetime of background work
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	runs map[deploymentKey]*deploymentRun

	publishMu sync.Mutex
}

type deploymentKey struct{ endpoint, name string }

// New returns a controller. Call Recover once the server is up, and Close to stop every instance.
func New(cfg Config) *Controller {
	if cfg.StopGrace == 0 {
		cfg.StopGrace = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.InstanceTypes == nil {
		cfg.InstanceTypes = DefaultInstanceTypes()
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Controller{cfg: cfg, log: log, ctx: ctx, cancel: cancel, runs: map[deploymentKey]*deploymentRun{}}
}

// Close stops all background work and every instance, and waits for them.
func (c *Controller) Close() {
	c.cancel()
	c.mu.Lock()
	runs := make([]*deploymentRun, 0, len(c.runs))
	for _, r := range c.runs {
		runs = append(runs, r)
	}
	c.mu.Unlock()
	var wg sync.WaitGroup
	for _, r := range runs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.stopAll(c.cfg.StopGrace)
		}()
	}
	wg.Wait()
	c.wg.Wait()
}

// go runs fn in the background, owned by the controller's lifetime.
func (c *Controller) goBackground(fn func(ctx context.Context)) {
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		fn(c.ctx)
	}()
}

// CreateEndpoint stores a new endpoint with fresh keys.
func (c *Controller) CreateEndpoint(ctx context.Context, ep *spec.Endpoint) (*store.Endpoint, error) {
	if ep.AuthMode != "" && ep.AuthMode != "key" {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "auth_mode",
			Message: fmt.Sprintf("auth_mode %q is not supported by Berth yet: use auth_mode: key", ep.AuthMode)}
	}
	if len(ep.Traffic) > 0 {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "traffic",
			Message: "traffic cannot be set when an endpoint is created, because it has no deployments yet: create the deployments, then run `berth online-endpoint update -n " + ep.Name + ` --traffic "blue=100"` + "`"}
	}
	if len(ep.MirrorTraffic) > 0 {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "mirror_traffic",
			Message: "mirror_traffic cannot be set when an endpoint is created: set it later with `berth online-endpoint update --mirror-traffic`"}
	}
	if err := c.checkEndpointQuota(ctx); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(ep)
	if err != nil {
		return nil, err
	}
	primary, err := auth.NewKey()
	if err != nil {
		return nil, err
	}
	secondary, err := auth.NewKey()
	if err != nil {
		return nil, err
	}
	rec := &store.Endpoint{Name: ep.Name, Spec: raw, Traffic: map[string]int{}, MirrorTraffic: map[string]int{},
		PrimaryKey: primary, SecondaryKey: secondary, State: StateSucceeded}
	err = c.cfg.Store.CreateEndpoint(ctx, rec)
	if err == nil {
		c.endOp(c.startOp(ctx, ep.Name, "", opCreate), nil)
	}
	if err != nil {
		if errors.Is(err, store.ErrExists) {
			return nil, &diag.Error{Code: diag.EndpointAlreadyExists, Target: ep.Name,
				Message: fmt.Sprintf("endpoint %q already exists: choose another name, or change it with `berth online-endpoint update -n %s`", ep.Name, ep.Name)}
		}
		return nil, fmt.Errorf("create endpoint: %w", err)
	}
	c.publish(ctx)
	return c.cfg.Store.GetEndpoint(ctx, ep.Name)
}

// GetEndpoint returns the stored endpoint or EndpointNotFound.
func (c *Controller) GetEndpoint(ctx context.Context, name string) (*store.Endpoint, error) {
	ep, err := c.cfg.Store.GetEndpoint(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return nil, endpointNotFound(name)
	}
	return ep, err
}

func endpointNotFound(name string) *diag.Error {
	return &diag.Error{Code: diag.EndpointNotFound, Target: name,
		Message: fmt.Sprintf("endpoint %q does not exist: list endpoints with `berth online-endpoint list`, or create it with `berth online-endpoint create -f endpoint.yml`", name)}
}

func deploymentNotFound(endpoint, name string) *diag.Error {
	return &diag.Error{Code: diag.DeploymentNotFound, Target: name,
		Message: fmt.Sprintf("deployment %q does not exist on endpoint %q: list them with `berth online-deployment list -e %s`", name, endpoint, endpoint)}
}

// EndpointChange is a change to an endpoint; nil fields are left as they are.
type EndpointChange struct {
	Spec          *spec.Endpoint
	Traffic       map[string]int
	MirrorTraffic map[string]int
}

// UpdateEndpoint applies a change. Traffic must name existing deployments and sum to 0 or 100;
// a rejected change leaves the endpoint as it was.
func (c *Controller) UpdateEndpoint(ctx context.Context, name string, ch EndpointChange) (rec *store.Endpoint, err error) {
	defer func() {
		if err == nil {
			c.endOp(c.startOp(ctx, name, "", opUpdate), nil)
		}
	}()
	deps, err := c.cfg.Store.ListDeployments(ctx, name)
	if err != nil {
		return nil, err
	}
	exists := map[string]bool{}
	for _, d := range deps {
		exists[d.Name] = true
	}
	var problems []*diag.Error
	check := func(field string, m map[string]int) {
		for dep := range m {
			if !exists[dep] {
				problems = append(problems, &diag.Error{Code: diag.BadArgument, Target: field + "." + dep,
					Message: fmt.Sprintf("deployment %q does not exist on endpoint %q: create it first, or remove it from %s", dep, name, field)})
			}
		}
	}
	if ch.Traffic != nil {
		if err := spec.ValidateTraffic(ch.Traffic); err != nil {
			return nil, err
		}
		check("traffic", ch.Traffic)
	}
	if ch.MirrorTraffic != nil {
		if err := spec.ValidateMirror(ch.MirrorTraffic); err != nil {
			return nil, err
		}
		check("mirror_traffic", ch.MirrorTraffic)
	}
	if len(problems) > 0 {
		return nil, &diag.Error{Code: diag.BadArgument, Message: fmt.Sprintf("endpoint %q was not changed", name), Details: problems}
	}
	rec, err = c.cfg.Store.UpdateEndpoint(ctx, name, func(e *store.Endpoint) error {
		if ch.Spec != nil {
			if ch.Spec.AuthMode != "" && ch.Spec.AuthMode != "key" {
				return &diag.Error{Code: diag.BadArgument, Target: "auth_mode",
					Message: fmt.Sprintf("auth_mode %q is not supported by Berth yet: use auth_mode: key", ch.Spec.AuthMode)}
			}
			raw, err := json.Marshal(ch.Spec)
			if err != nil {
				return err
			}
			e.Spec = raw
			if len(ch.Spec.Traffic) > 0 && ch.Traffic == nil {
				ch.Traffic = ch.Spec.Traffic
			}
		}
		if ch.Traffic != nil {
			t := map[string]int{}
			for k, v := range ch.Traffic {
				t[k] = v
			}
			// Azure keeps every deployment in the traffic map; one not named gets 0.
			for dep := range exists {
				if _, ok := t[dep]; !ok {
					t[dep] = 0
				}
			}
			e.Traffic = t
		}
		if ch.MirrorTraffic != nil {
			e.MirrorTraffic = map[string]int{}
			for k, v := range ch.MirrorTraffic {
				if v > 0 {
					e.MirrorTraffic[k] = v
				}
			}
		}
		for dep, pct := range e.MirrorTraffic {
			if e.Traffic[dep] > 0 {
				return &diag.Error{Code: diag.BadArgument, Target: "mirror_traffic." + dep,
					Message: fmt.Sprintf("deployment %q cannot get live traffic (%d%%) and mirror traffic (%d%%) at once: set one of them to 0", dep, e.Traffic[dep], pct)}
			}
		}
		return nil
	})
	return c.updated(ctx, name, rec, err)
}

// RegenerateKey replaces the primary or secondary key.
func (c *Controller) RegenerateKey(ctx context.Context, name, keyType string) (*store.Endpoint, error) {
	key, err := auth.NewKey()
	if err != nil {
		return nil, err
	}
	rec, err := c.cfg.Store.UpdateEndpoint(ctx, name, func(e *store.Endpoint) error {
		switch keyType {
		case "primary", "Primary":
			e.PrimaryKey = key
		case "secondary", "Secondary":
			e.SecondaryKey = key
		default:
			return &diag.Error{Code: diag.BadArgument, Target: "keyType",
				Message: fmt.Sprintf("key type %q is not one of primary, secondary", keyType)}
		}
		return nil
	})
	return c.updated(ctx, name, rec, err)
}

// DeleteEndpoint stops and deletes every deployment of the endpoint, then the endpoint.
func (c *Controller) DeleteEndpoint(ctx context.Context, name string) error {
	if _, err := c.GetEndpoint(ctx, name); err != nil {
		return err
	}
	if err := c.busy(ctx, name); err != nil {
		return err
	}
	op := c.startOp(ctx, name, "", opDelete)
	defer c.endOp(op, nil)
	if _, err := c.cfg.Store.UpdateEndpoint(ctx, name, func(e *store.Endpoint) error {
		e.State = StateDeleting
		return nil
	}); err != nil {
		return err
	}
	deps, err := c.cfg.Store.ListDeployments(ctx, name)
	if err != nil {
		return err
	}
	for _, d := range deps {
		c.stopDeployment(d.Endpoint, d.Name)
	}
	if err := c.cfg.Store.DeleteEndpoint(ctx, name); err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	if err := os.RemoveAll(filepath.Join(c.cfg.DataDir, "instances", name)); err != nil {
		c.log.Warn("remove endpoint files", "endpoint", name, "err", err)
	}
	c.publish(ctx)
	return nil
}

// ListEndpoints returns every endpoint.
func (c *Controller) ListEndpoints(ctx context.Context) ([]*store.Endpoint, error) {
	return c.cfg.Store.ListEndpoints(ctx)
}

// PutArtifact stores an uploaded tar stream and returns its digest and size.
func (c *Controller) PutArtifact(r io.Reader) (string, int64, error) {
	return c.cfg.Artifacts.Put(r)
}

// HasArtifact reports whether an artifact is stored.
func (c *Controller) HasArtifact(digest string) bool { return c.cfg.Artifacts.Has(digest) }

// updated finishes an endpoint change: it maps a missing endpoint to EndpointNotFound
// and publishes the new routing table.
func (c *Controller) updated(ctx context.Context, name string, rec *store.Endpoint, err error) (*store.Endpoint, error) {
	if errors.Is(err, store.ErrNotFound) {
		return nil, endpointNotFound(name)
	}
	if err != nil {
		return nil, err
	}
	c.publish(ctx)
	return rec, nil
}
