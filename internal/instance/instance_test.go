package instance

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/diag"
)

func TestFlagsArgs(t *testing.T) {
	tests := []struct {
		name  string
		flags Flags
		want  []string
	}{
		{"every field", Flags{EntryScript: "/c/score.py", ModelDir: "/m", Host: "127.0.0.1", Port: 5002,
			WorkerCount: 2, Python: "/venv/bin/python", StatusFile: "/s/status.json"},
			[]string{"inference-server", "--entry_script", "/c/score.py", "--model_dir", "/m", "--host", "127.0.0.1",
				"--port", "5002", "--worker_count", "2", "--status_file", "/s/status.json", "--python", "/venv/bin/python"}},
		{"zero fields are left to the instance's defaults", Flags{EntryScript: "score.py"},
			[]string{"inference-server", "--entry_script", "score.py"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, tt.flags.Args()); diff != "" {
				t.Fatalf("Args (-want +got):\n%s", diff)
			}
		})
	}
}

func TestStatusRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	for _, want := range []Status{
		{Error: &diag.Error{Code: diag.UserScriptInitFailed, Message: "init() raised ValueError",
			Details: []*diag.Error{{Code: diag.BadArgument, Message: "Traceback ..."}}}},
		{Phases: &Phases{ImportMs: 12.5, InitMs: 300, ReadyMs: 420.25}},
	} {
		if err := WriteStatus(path, want); err != nil {
			t.Fatal(err)
		}
		got, err := ReadStatus(path)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("ReadStatus (-want +got):\n%s", diff)
		}
	}
	// The replaced file leaves no temporary file behind.
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil || len(entries) != 1 {
		t.Fatalf("status folder holds %v (%v), want status.json only", entries, err)
	}
}

func TestReadStatusMissingFile(t *testing.T) {
	_, err := ReadStatus(filepath.Join(t.TempDir(), "status.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("ReadStatus of a missing file: %v, want fs.ErrNotExist", err)
	}
}

func TestReadStatusRejectsGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "status.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadStatus(path); err == nil {
		t.Fatal("ReadStatus of a broken file: no error")
	}
}
