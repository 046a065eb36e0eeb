package inference

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/berthml/berth/internal/instance"
)

// TestCommandParsesFlagsArgs checks that the command line berth serve builds with
// instance.Flags is the one `berth inference-server` understands, field by field.
func TestCommandParsesFlagsArgs(t *testing.T) {
	want := instance.Flags{EntryScript: "/code/score.py", ModelDir: "/model", Host: "127.0.0.1", Port: 5123,
		WorkerCount: 3, Python: "/venv/bin/python", StatusFile: "/run/status.json"}
	args := want.Args()
	cmd := NewCommand()
	if args[0] != cmd.Name() {
		t.Fatalf("Args()[0] = %q, want the command name %q", args[0], cmd.Name())
	}
	f := cmd.Flags()
	if err := f.Parse(args[1:]); err != nil {
		t.Fatalf("parse %q: %v", args, err)
	}
	var got instance.Flags
	var errs []error
	str := func(name string) string { v, err := f.GetString(name); errs = append(errs, err); return v }
	num := func(name string) int { v, err := f.GetInt(name); errs = append(errs, err); return v }
	got.EntryScript, got.ModelDir, got.Host = str(instance.FlagEntryScript), str(instance.FlagModelDir), str(instance.FlagHost)
	got.Port, got.WorkerCount = num(instance.FlagPort), num(instance.FlagWorkerCount)
	got.Python, got.StatusFile = str(instance.FlagPython), str(instance.FlagStatusFile)
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("parsed flags (-want +got):\n%s", diff)
	}
	if len(f.Args()) != 0 {
		t.Fatalf("arguments left over: %q", f.Args())
	}
}

// TestCommandWritesPhases runs the command as berth serve starts it and reads the
// status file it writes once ready.
func TestCommandWritesPhases(t *testing.T) {
	status := filepath.Join(t.TempDir(), "status.json")
	flags := instance.Flags{EntryScript: filepath.Join("testdata", "echo_score.py"), ModelDir: t.TempDir(),
		Host: "127.0.0.1", Port: freePort(t), WorkerCount: 1, StatusFile: status}
	cmd := NewCommand()
	cmd.SetArgs(flags.Args()[1:])
	log := &lockedLog{}
	cmd.SetOut(log)
	cmd.SetErr(io.Discard)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() { cancel(); <-done })

	deadline := time.Now().Add(15 * time.Second)
	for {
		s, err := instance.ReadStatus(status)
		if err == nil {
			if s.Error != nil || s.Phases == nil || s.Phases.ReadyMs <= 0 {
				t.Fatalf("status = %+v, want phases only", s)
			}
			return
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no status file after 15s; log:\n%s", log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
