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
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/api"
	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/envbuild"
	"github.com/berthml/berth/internal/router"
	"github.com/berthml/berth/internal/runtime/process"
	"github.com/berthml/berth/internal/store/sqlite"
	"github.com/berthml/berth/internal/wire"
)

// NewServeCommand returns `berth serve`.
func NewServeCommand() *cobra.Command {
	var cfg Config
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the Berth server: control plane and scoring router on one port",
		Long: `Run the Berth server. It keeps endpoints and deployments in <data-dir>/berth.db,
runs each deployment's instances as local processes, and serves the control-plane API
(/api/v1/...) and scoring (/endpoints/<name>/score) on --addr. It writes
<data-dir>/server.json with its URL and admin token for the berth CLI.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return Run(cmd.Context(), cfg, cmd.ErrOrStderr())
		},
	}
	bindFlags(cmd, &cfg)
	return cmd
}

// Run serves until ctx is cancelled, then drains requests and stops every instance.
func Run(ctx context.Context, cfg Config, logOut interface{ Write([]byte) (int, error) }) error {
	level, err := cfg.level()
	if err != nil {
		return err
	}
	maxBody, rps, err := cfg.limits()
	if err != nil {
		return err
	}
	quota, instanceTypes, err := cfg.quota()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: level}))
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	dataDir, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return err
	}
	st, err := sqlite.Open(filepath.Join(dataDir, "berth.db"))
	if err != nil {
		return fmt.Errorf("open metadata: %w", err)
	}
	defer st.Close()
	arts, err := artifacts.Open(filepath.Join(dataDir, "artifacts"))
	if err != nil {
		return fmt.Errorf("open artifacts: %w", err)
	}
	token, err := adminToken(dataDir)
	if err != nil {
		return err
	}
	sealer, err := auth.OpenSealer(filepath.Join(dataDir, "secret.key"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return fmt.Errorf("listen on %s: the address is in use (is another berth serve running? `berth online-endpoint list` talks to it); choose another with --addr", cfg.Addr)
		}
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	baseURL := "http://" + ln.Addr().String()
	var base atomic.Value
	base.Store(baseURL)

	rt := router.New(router.Config{Log: log.With("component", "router"), MaxBodyBytes: maxBody, EndpointRPS: rps})
	defer rt.Close()
	ctrl := controller.New(controller.Config{
		Store:         st,
		Artifacts:     arts,
		Runtime:       &process.Runtime{},
		DataDir:       dataDir,
		Python:        cfg.Python,
		Publish:       rt.Swap,
		Log:           log.With("component", "controller"),
		InstanceTypes: instanceTypes,
		Quota:         quota,
		Sealer:        sealer,
		Envs:          &envbuild.Builder{Root: filepath.Join(dataDir, "envs"), Strict: strings.EqualFold(cfg.EnvStrict, "true")},
	})
	defer ctrl.Close()

	mux := http.NewServeMux()
	mux.Handle(wire.APIPrefix+"/", api.New(api.Config{
		Controller: ctrl, Token: token, Log: log,
		BaseURL: func() string { return base.Load().(string) },
	}))
	mux.Handle("/endpoints/", rt)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "Berth is running. Scoring: POST /endpoints/<name>/score. Control plane: /api/v1 (admin token).")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}

	infoPath := filepath.Join(dataDir, wire.ServerInfoFile)
	if err := writeInfo(infoPath, wire.ServerInfo{URL: baseURL, Token: token, PID: os.Getpid()}); err != nil {
		return err
	}
	defer os.Remove(infoPath)
	log.Info("berth serve started", append([]any{"url", baseURL}, cfg.logAttrs()...)...)

	if err := ctrl.Recover(ctx); err != nil {
		return err
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("berth serve stopping: draining requests, then stopping instances")
	shutCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	srv.Shutdown(shutCtx)
	<-errc
	return nil
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
