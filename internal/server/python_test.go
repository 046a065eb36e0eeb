package server

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthml/berth/internal/instance"
)

func TestCheckPython(t *testing.T) {
	dir := t.TempDir()
	fake := filepath.Join(dir, "python3")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho 3.13.1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'error while loading shared libraries: libpython3.13.so' >&2\nexit 127\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Run("runs", func(t *testing.T) {
		got, err := checkPython(t.Context(), &Config{Python: fake, PythonSource: "BERTH_PYTHON"})
		if err != nil {
			t.Fatal(err)
		}
		want := pythonChoice{Python: fake, Source: "env BERTH_PYTHON", Path: fake, Version: "3.13.1"}
		if got != want {
			t.Errorf("choice = %+v, want %+v", got, want)
		}
		if !strings.Contains(got.debianAdvice(), "berth serve --python "+instance.SystemPython) {
			t.Errorf("a python that is not Debian's: advice %q", got.debianAdvice())
		}
	})
	tests := []struct {
		name, python, source string
		want                 []string
	}{
		{"flag, cannot run", broken, "--python", []string{"chosen by flag --python", "libpython3.13.so", "pass --python an interpreter that runs"}},
		{"env, missing", filepath.Join(dir, "nope"), "BERTH_PYTHON", []string{"chosen by env BERTH_PYTHON", "set BERTH_PYTHON to an interpreter that runs", "or unset it"}},
		{"PATH, missing", "python3-berth-test-missing", "", []string{"chosen by PATH", "apt-get install python3", "--python /usr/bin/python3"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := checkPython(t.Context(), &Config{Python: tt.python, PythonSource: tt.source})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestServeLogsPython(t *testing.T) {
	if _, err := os.Stat(instance.SystemPython); err != nil {
		t.Skipf("no %s", instance.SystemPython)
	}
	cfg := testConfig(t)
	cfg.Python, cfg.PythonSource = instance.SystemPython, "--python"
	var log bytes.Buffer
	cfg.LogOutput = &log
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	infoPath := filepath.Join(cfg.DataDir, "server.json")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(infoPath); err == nil {
			break
		}
		if time.Now().After(deadline) {
			break
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	for _, want := range []string{"score.py runs with /usr/bin/python3", "python.chosen_by=\"flag --python\"", "python.path=/usr/bin/python3", "python.version=3."} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("startup log lacks %q:\n%s", want, log.String())
		}
	}
	if strings.Contains(log.String(), "packages installed with apt-get") {
		t.Errorf("advice to use Debian's python while using it:\n%s", log.String())
	}
}

func TestServeStopsOnPythonThatCannotRun(t *testing.T) {
	cfg := testConfig(t)
	cfg.Python, cfg.PythonSource = filepath.Join(t.TempDir(), "python3"), "BERTH_PYTHON"
	cfg.LogOutput = &bytes.Buffer{}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Run(t.Context())
	if err == nil || !strings.Contains(err.Error(), "chosen by env BERTH_PYTHON") {
		t.Fatalf("Run = %v, want an error naming BERTH_PYTHON", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.DataDir, "server.json")); err == nil {
		t.Error("server.json written by a server that did not start")
	}
}
