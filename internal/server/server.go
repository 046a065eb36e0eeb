// Package server is the composition root of `berth serve`: it reads the configuration
// and wires store, artifacts, controller, runtime, router and API into one HTTP server.
package server

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/api"
	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/jobs"
	"github.com/berthml/berth/internal/quota"
	"github.com/berthml/berth/internal/registry"
	"github.com/berthml/berth/internal/router"
	"github.com/berthml/berth/internal/runtime/kubernetes"
	"github.com/berthml/berth/internal/runtime/process"
	"github.com/berthml/berth/internal/stage"
	"github.com/berthml/berth/internal/store/sealed"
	"github.com/berthml/berth/internal/store/sqlite"
	"github.com/berthml/berth/internal/telemetry"
	"github.com/berthml/berth/internal/wire"
	"github.com/berthml/berth/web"
)

// NewServeCommand returns `berth serve`: it reads the configuration table, then runs
// New and Run.
func NewServeCommand() *cobra.Command {
	return newServeCommand(func(ctx context.Context, cfg Config) error {
		s, err := New(cfg)
		if err != nil {
			return err
		}
		return s.Run(ctx)
	})
}

// newServeCommand builds the command around run, so that tests can see the Config the
// flags and environment produce without starting a server.
func newServeCommand(run func(context.Context, Config) error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Berth server: control plane and scoring router on one port",
		Long: `Run the Berth server. It keeps endpoints and deployments in <data-dir>/berth.db,
runs each deployment's instances as local processes, and serves the control-plane API
(/api/v1/...) and scoring (/endpoints/<name>/score) on --addr. It writes
<data-dir>/server.json with its URL and admin token for the berth CLI, and holds a lock
on <data-dir>/server.lock: one server per data dir. The data dir is made 0700.

--tls-cert/--tls-key (or --tls=true, a self-signed certificate in <data-dir>/tls) serve
HTTPS; listening beyond loopback without TLS logs a warning. --public-url sets the base
of scoring_uri when clients reach the server by another name.

Each flag can also be set by its environment variable; a flag wins over the variable.`,
		Args: cobra.NoArgs,
	}
	for _, s := range settings() {
		cmd.Flags().String(s.name, s.def, fmt.Sprintf("%s (env %s)", s.doc, s.env))
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		given := func(name string) (string, bool) {
			f := cmd.Flags().Lookup(name)
			if f == nil || !f.Changed {
				return "", false
			}
			return f.Value.String(), true
		}
		cfg, err := loadConfig(os.LookupEnv, given)
		if err != nil {
			return err
		}
		cfg.LogOutput = cmd.ErrOrStderr()
		return run(cmd.Context(), cfg)
	}
	return cmd
}

// Server is `berth serve` put together: metadata store, artifacts, controller, router
// and API behind one listener.
type Server struct {
	cfg     Config
	log     *slog.Logger
	dataDir string
	token   string
	tokens  *auth.Issuer // signs and checks endpoint and access tokens
	url     string       // what the CLI connects to (server.json)
	// publicURL is the base of scoring_uri: --public-url, else url (with the hostname
	// for a wildcard listen).
	publicURL string
	ctrl      *controller.Controller
	batch     *jobs.Service
	reg       *registry.Registry
	store     *sealed.Store // the metadata store, endpoint keys sealed
	srv       *http.Server
	ln        net.Listener
	tel       *telemetry.Telemetry
	// metricsSrv serves --metrics-addr on metricsLn (nil: no such listener).
	metricsSrv *http.Server
	metricsLn  net.Listener
	closers    []func() // undone in reverse order by Close
}

// New opens the data dir, the metadata and artifact stores, listens on cfg.Addr and wires
// router, controller and API. Run serves; a Server that is never run must be closed.
func New(cfg Config) (*Server, error) {
	out := cfg.LogOutput
	if out == nil {
		out = os.Stderr
	}
	s := &Server{cfg: cfg, log: slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: cfg.LogLevel}))}
	if err := s.build(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// URL is the server's base URL, such as http://127.0.0.1:5555.
func (s *Server) URL() string { return s.url }

// build opens what the server owns, registering each in s.closers as soon as it is open.
// The data dir's lock comes first, so that a second server touches nothing.
func (s *Server) build() error {
	dataDir, unlock, err := s.openDataDir()
	if err != nil {
		return err
	}
	s.closers = append(s.closers, unlock)
	s.dataDir = dataDir
	dbPath := filepath.Join(dataDir, "berth.db")
	if err := privateFiles(dbPath); err != nil {
		return err
	}
	st, err := sqlite.Open(dbPath)
	if err != nil {
		return fmt.Errorf("open metadata: %w", err)
	}
	s.closers = append(s.closers, func() { st.Close() })
	arts, err := artifacts.Open(filepath.Join(dataDir, "artifacts"))
	if err != nil {
		return fmt.Errorf("open artifacts: %w", err)
	}
	if s.token, err = adminToken(dataDir); err != nil {
		return err
	}
	sealer, err := auth.OpenSealer(filepath.Join(dataDir, "secret.key"))
	if err != nil {
		return err
	}
	if s.tokens, err = auth.OpenIssuer(filepath.Join(dataDir, "token.key"), nil); err != nil {
		return err
	}
	if err := s.listen(); err != nil {
		return err
	}
	rt, err := s.buildRouter()
	if err != nil {
		return err
	}
	s.closers = append(s.closers, rt.Close)
	// Endpoint keys are sealed at rest with the same key as connection credentials.
	s.store = sealed.Wrap(st, sealer)
	s.reg = registry.New(s.store, arts, sealer)
	envs := &envbuild.Builder{Root: filepath.Join(dataDir, "envs"), Strict: s.cfg.EnvStrict}
	qc := quota.Checker{Types: s.cfg.InstanceTypes,
		Limits: quota.Limits{Cores: s.cfg.QuotaCores, MemoryBytes: s.cfg.QuotaMemory, MaxEndpoints: s.cfg.MaxEndpoints}}
	tracked := &trackedRuntime{next: &process.Runtime{}, tel: s.tel.Instances}
	s.ctrl = controller.New(controller.Config{
		Store:     s.store,
		Registry:  s.reg,
		Artifacts: arts,
		Runtime:   tracked,
		Clusters:  kubernetes.Runtime{},
		Computes:  s.store,
		// Pods fetch artifacts with a token that allows only that, kept in a Secret
		// of the compute's namespace (README: Running on Kubernetes).
		PodAccess: s.podAccess,
		DataDir:   dataDir,
		Python:    s.cfg.Python,
		Publish:   afterPublish(rt.Swap, func() { tracked.last.retain(rt.Load) }),
		Log:       s.log.With("component", "controller"),
		Quota:     qc,
		Envs:      envs,
		Operated:  s.tel.Operated,
	})
	s.closers = append(s.closers, s.ctrl.Close)
	if err := s.buildBatch(arts, envs, qc); err != nil {
		return err
	}
	s.srv.Handler = bodyDeadline(s.handler(rt), controlBodyTimeout)
	return nil
}

// buildRouter builds telemetry, the --metrics-addr listener and the router that
// reports to them.
func (s *Server) buildRouter() (*router.Router, error) {
	var err error
	if s.tel, err = telemetry.New(telemetry.Config{Log: s.log.With("component", "telemetry"), OTLPEndpoint: s.cfg.OTLPEndpoint}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.tel.Stop)
	if err := s.metricsListener(); err != nil {
		return nil, err
	}
	rps := s.cfg.EndpointRPS
	if rps == 0 {
		rps = -1 // the router reads < 0 as "no limit"
	}
	rcfg := router.Config{Log: s.log.With("component", "router"), MaxBodyBytes: s.cfg.MaxRequestBody, EndpointRPS: rps, Tokens: s.tokens,
		Metrics: s.tel.Scoring}
	if s.tel.Tracing() {
		rcfg.Tracer = s.tel.Tracer()
	}
	rt := router.New(rcfg)
	s.tel.AddLoadSource(rt)
	return rt, nil
}

// podAccess is the server's public URL and a token for pods on Kubernetes computes
// that allows reading artifacts and serving job's workers, nothing else.
func (s *Server) podAccess(artifacts []string, job string) (string, string, error) {
	tok, err := s.tokens.PodToken(auth.PodScope{Artifacts: artifacts, Job: job})
	if err != nil {
		return "", "", err
	}
	return s.publicURL, tok.Value, nil
}

// buildBatch wires the batch service: computes, batch endpoints and jobs.
func (s *Server) buildBatch(arts *artifacts.Store, envs *envbuild.Builder, qc quota.Checker) error {
	stager := stage.New(stage.Config{Artifacts: arts, Registry: s.reg, Envs: envs, Quota: qc, Python: s.cfg.Python})
	svc, err := jobs.New(jobs.Config{Store: s.store, Registry: s.reg, Artifacts: arts, Stage: stager,
		DataDir: s.dataDir, BaseURL: func() string { return s.publicURL }, Log: s.log.With("component", "batch"),
		Clusters: kubernetes.Checker{}, ClusterJobs: kubernetes.Runtime{}, Observe: batchProgress(s.tel),
		// A job's pods fetch artifacts and pull mini-batches with a token scoped to that.
		PodAccess: s.podAccess})
	if err != nil {
		return err
	}
	s.batch = svc
	s.closers = append(s.closers, svc.Close)
	return nil
}

// listen opens the listener on cfg.Addr behind the connection cap, sets up TLS and sets
// the server's URLs from the bound address.
func (s *Server) listen() error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen on %s: the address is in use (is another berth serve running? `berth online-endpoint list` talks to it); choose another with --addr", s.cfg.Addr)
		}
		return fmt.Errorf("listen on %s: %w", s.cfg.Addr, err)
	}
	s.closers = append(s.closers, func() { ln.Close() })
	lim := newConnLimiter(ln, s.maxConnections())
	s.ln = lim
	s.srv = &http.Server{
		ReadHeaderTimeout: readHeaderTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         lim.connState,
		// TLS handshake failures and the like are client noise, not server faults.
		ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	hostname, _ := os.Hostname()
	tlsCfg, certFile, err := serverTLS(&s.cfg, s.dataDir, certHosts(ln.Addr(), hostname, s.cfg.PublicURL))
	if err != nil {
		return err
	}
	scheme := "http"
	if tlsCfg != nil {
		scheme = "https"
		s.srv.TLSConfig = tlsCfg
		if s.cfg.TLS {
			s.log.Info("serving HTTPS with a self-signed certificate; clients must trust it, e.g. the berth CLI with SSL_CERT_FILE=" + certFile)
		} else {
			s.log.Info("serving HTTPS", "certificate", certFile)
		}
	} else if !isLoopback(ln.Addr()) {
		s.log.Warn("WARNING: listening on a non-loopback address without TLS: admin and endpoint keys, tokens and scoring data cross the network in clear text; use --tls-cert/--tls-key or --tls, or --addr 127.0.0.1:PORT",
			"addr", ln.Addr().String())
	}
	s.url, s.publicURL = urls(ln.Addr(), scheme, s.cfg.PublicURL, hostname)
	return nil
}

// maxConnections is --max-connections, lowered to half the open-file limit (after
// raising it) so that proxied scoring connections and the store still get descriptors.
func (s *Server) maxConnections() int {
	limit := raiseOpenFiles()
	if half := limit / 2; limit > 0 && uint64(s.cfg.MaxConnections) > half {
		s.log.Warn("--max-connections is above half the open-file limit; lowering it (raise ulimit -n to allow more)",
			"max-connections", s.cfg.MaxConnections, "open-file-limit", limit, "using", half)
		return int(max(half, 1))
	}
	return s.cfg.MaxConnections
}

// handler routes the control plane, scoring and the root page.
func (s *Server) handler(rt *router.Router) http.Handler {
	mux := http.NewServeMux()
	cfg := api.Config{
		Controller: s.ctrl, Registry: s.reg, Batch: s.batch, Token: s.token, Tokens: s.tokens, Log: s.log,
		BaseURL: func() string { return s.publicURL }, Metrics: s.tel,
	}
	mux.Handle(wire.APIPrefix+"/", api.New(cfg))
	mux.Handle("GET /metrics", api.RequireAdmin(cfg, s.tel.Handler()))
	mux.Handle("/endpoints/", rt)
	mux.Handle("POST /endpoints/{name}/jobs", api.NewBatchInvoke(cfg, s.tokens))
	studio := web.Handler()
	mux.Handle("GET /{$}", studio)
	mux.Handle("GET "+web.AssetPrefix, studio)
	return scoringFirst(mux, rt)
}

// scoringFirst sends /endpoints/<name>/score straight to the router, the handler the
// mux would choose for it: the busiest route skips the mux's matching. Paths the mux
// would clean or redirect ("..", "//") still go through the mux.
func scoringFirst(mux *http.ServeMux, rt http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rest, ok := strings.CutPrefix(r.URL.Path, "/endpoints/")
		name, ok2 := strings.CutSuffix(rest, "/score")
		if ok && ok2 && name != "" && name != "." && name != ".." && !strings.Contains(name, "/") && r.Method != http.MethodConnect {
			rt.ServeHTTP(w, r)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// Run writes server.json, recovers the stored deployments and serves until ctx is done;
// then it drains in-flight requests (up to 10 s), stops every instance, removes
// server.json and closes the server. Call it once.
func (s *Server) Run(ctx context.Context) error {
	defer s.Close()
	baseURL, token := s.url, s.token
	python, err := checkPython(ctx, &s.cfg)
	if err != nil {
		return err
	}
	infoPath := filepath.Join(s.dataDir, wire.ServerInfoFile)
	if err := writeInfo(infoPath, wire.ServerInfo{URL: baseURL, Token: token, PID: os.Getpid()}); err != nil {
		return err
	}
	defer os.Remove(infoPath)
	// The settings as in effect: the public URL and the interpreter resolved, not as given.
	attrs := s.cfg.logAttrs()
	for i := 0; i+1 < len(attrs); i += 2 {
		switch attrs[i] {
		case "public-url":
			attrs[i+1] = s.publicURL
		case "python":
			attrs[i+1] = python.Path
		}
	}
	s.log.Info("berth serve started", append([]any{"url", baseURL}, attrs...)...)
	s.log.Info("score.py runs with "+python.Path, "python", python)
	if advice := python.debianAdvice(); advice != "" {
		s.log.Info(advice)
	}

	if err := s.recover(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while recovering: a clean stop
		}
		return err
	}
	if err := s.tel.Start(ctx); err != nil {
		return err
	}
	metricsDone := make(chan struct{})
	go func() {
		defer close(metricsDone)
		s.serveMetrics()
	}()
	defer func() {
		if s.metricsSrv != nil {
			s.metricsSrv.Close() // after the Shutdown below, or on an early return
		}
		<-metricsDone
	}()
	errc := make(chan error, 1)
	go func() {
		if s.srv.TLSConfig != nil {
			errc <- s.srv.ServeTLS(s.ln, "", "")
			return
		}
		errc <- s.srv.Serve(s.ln)
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.log.Info("berth serve stopping: draining requests, then stopping instances")
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	s.srv.Shutdown(shutCtx)
	<-errc
	if s.metricsSrv != nil {
		s.metricsSrv.Shutdown(shutCtx)
	}
	s.tel.Flush(shutCtx)
	s.Close() // the instances stop here; the deferred Close then has nothing left to do
	s.log.Info("berth serve stopped")
	return nil
}

// recover seals keys stored in plaintext, restarts the stored deployments and resumes
// the unfinished batch jobs.
func (s *Server) recover(ctx context.Context) error {
	if n, err := s.store.Migrate(ctx); err != nil {
		return err
	} else if n > 0 {
		s.log.Info("sealed the keys of endpoints stored before keys were sealed", "endpoints", n)
	}
	if err := s.ctrl.Recover(ctx); err != nil {
		return err
	}
	return s.batch.Recover(ctx)
}

// Close stops every instance and releases the listener and the stores, in the reverse
// order New opened them. Run calls it; call it only for a Server that is not run.
func (s *Server) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// adminToken returns the token kept in <data-dir>/admin-token, creating it once, so
// that it survives restarts.
func adminToken(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "admin-token")
	if b, err := os.ReadFile(path); err == nil && len(strings.TrimSpace(string(b))) > 0 {
		return strings.TrimSpace(string(b)), nil
	}
	buf := make([]byte, 32)
	if _, err := rand.Read(buf); err != nil {
		return "", err
	}
	tok := base64.RawURLEncoding.EncodeToString(buf)
	if err := os.WriteFile(path, []byte(tok+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write admin token: %w", err)
	}
	return tok, nil
}

func writeInfo(path string, info wire.ServerInfo) error {
	b, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Chmod(tmp, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
