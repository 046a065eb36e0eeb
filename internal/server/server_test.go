package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthml/berth/internal/wire"
)

// testConfig is the table's defaults with a fresh data dir and a free port.
func testConfig(t *testing.T) Config {
	t.Helper()
	cfg := defaults()
	cfg.Addr = "127.0.0.1:0"
	cfg.DataDir = filepath.Join(t.TempDir(), "data")
	return cfg
}

func TestServerRunsAndStops(t *testing.T) {
	cfg := testConfig(t)
	var log bytes.Buffer // written by Run, read only after Run returned
	cfg.LogOutput = &log
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()

	infoPath := filepath.Join(cfg.DataDir, wire.ServerInfoFile)
	var info wire.ServerInfo
	for deadline := time.Now().Add(10 * time.Second); ; {
		if b, err := os.ReadFile(infoPath); err == nil && json.Unmarshal(b, &info) == nil {
			break
		}
		if time.Now().After(deadline) {
			cancel()
			<-done
			t.Fatalf("no %s; log:\n%s", wire.ServerInfoFile, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if info.URL != s.URL() || info.Token == "" || info.PID != os.Getpid() {
		t.Errorf("server.json = %+v, server URL %s", info, s.URL())
	}
	resp, err := http.Get(s.URL() + "/")
	if err != nil {
		t.Errorf("GET /: %v", err)
	} else {
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET / = %d", resp.StatusCode)
		}
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	if _, err := os.Stat(infoPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("%s left behind: %v", wire.ServerInfoFile, err)
	}
	if !strings.Contains(log.String(), "berth serve started") || !strings.Contains(log.String(), "quota-memory=0") {
		t.Errorf("startup log does not list the settings:\n%s", log.String())
	}
	// The settings in effect, each once: the public URL derived from the listen URL.
	if !strings.Contains(log.String(), "public-url="+s.URL()) || strings.Contains(log.String(), "public_url") {
		t.Errorf("startup log does not give the public URL in effect, once:\n%s", log.String())
	}
	if !strings.Contains(log.String(), "berth serve stopped") {
		t.Errorf("no line says the server stopped:\n%s", log.String())
	}
}

func TestNewFailsOnBusyAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	cfg := testConfig(t)
	cfg.Addr = ln.Addr().String()
	if s, err := New(cfg); err == nil {
		s.Close()
		t.Fatal("New listened on a busy address")
	}
	// A failed New leaves the data dir usable for the next one.
	cfg.Addr = "127.0.0.1:0"
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New after a failed New: %v", err)
	}
	s.Close()
}

// The scoring route skips the mux only where the mux would choose the router anyway.
func TestScoringFirstSkipsOnlyTheMuxMatchOfTheRouter(t *testing.T) {
	var got string
	mux := http.NewServeMux()
	mux.HandleFunc("/endpoints/", func(http.ResponseWriter, *http.Request) { got = "mux router" })
	mux.HandleFunc("POST /endpoints/{name}/jobs", func(http.ResponseWriter, *http.Request) { got = "mux jobs" })
	mux.HandleFunc("/", func(http.ResponseWriter, *http.Request) { got = "mux other" })
	h := scoringFirst(mux, http.HandlerFunc(func(http.ResponseWriter, *http.Request) { got = "router" }))
	for target, want := range map[string]string{
		"POST /endpoints/ep-1/score":        "router",
		"GET /endpoints/ep-1/score":         "router",
		"POST /endpoints/ep-1/jobs":         "mux jobs",
		"POST /endpoints/ep-1/swagger.json": "mux router",
		"POST /endpoints/../score":          "mux redirect", // to the cleaned path
		"POST /endpoints//score":            "mux redirect",
		"POST /endpoints/a/b/score":         "mux router",
	} {
		method, path, _ := strings.Cut(target, " ")
		got = ""
		req := &http.Request{Method: method, URL: &url.URL{Path: path}, Header: http.Header{}, Host: "x"}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code/100 == 3 && got == "" {
			got = "mux redirect"
		}
		if got != want {
			t.Errorf("%s went to %q, want %q", target, got, want)
		}
	}
}
