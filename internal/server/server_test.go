package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
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
