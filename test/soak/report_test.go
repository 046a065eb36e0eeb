//go:build linux

package soak

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// row is one line of the report table (README.md explains the columns).
type row struct {
	test         string
	faults       int
	requests     int
	undocumented int
	orphans      int
	leaked       int64
}

var (
	rowsMu sync.Mutex
	rows   []row
)

// report logs a test's row and keeps it for the table TestMain prints.
func report(t *testing.T, r row) {
	t.Helper()
	r.test = t.Name()
	t.Logf("report: %s", r.format())
	rowsMu.Lock()
	rows = append(rows, r)
	rowsMu.Unlock()
}

func (r row) format() string {
	return fmt.Sprintf("| %-19s | %6d | %8d | %14d | %7d | %12d |", r.test, r.faults, r.requests, r.undocumented, r.orphans, r.leaked)
}

func printTable() {
	rowsMu.Lock()
	defer rowsMu.Unlock()
	if len(rows) == 0 {
		return
	}
	form := "short"
	if long() {
		form = "long"
	}
	fmt.Printf("\nsoak report (%s form)\n", form)
	fmt.Println("| test                | faults | requests | non-documented | orphans | leaked bytes |")
	fmt.Println("|---------------------|--------|----------|----------------|---------|--------------|")
	for _, r := range rows {
		fmt.Println(r.format())
	}
}

// diskUse is what a stopped server left in its data dir, in bytes by kind.
type diskUse struct {
	artifacts, envs, logs, metadata, leaked int64
	leakedPaths                             []string
}

// measureDisk walks a data dir whose server has stopped. Artifacts, environments, the
// store and keys, and each instance folder's logs/ and status.json are expected; every
// other byte (model and code copies of stopped instances, upload leftovers in
// artifacts/tmp, stray files) is leaked.
func measureDisk(t *testing.T, dataDir string) diskUse {
	t.Helper()
	var u diskUse
	err := filepath.WalkDir(dataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dataDir, path)
		parts := strings.Split(rel, string(filepath.Separator))
		n := info.Size()
		switch {
		case parts[0] == "artifacts" && len(parts) > 1 && parts[1] == "sha256":
			u.artifacts += n
		case parts[0] == "envs":
			u.envs += n
		case len(parts) == 1:
			u.metadata += n // berth.db and its journal, keys, the lock
		case parts[0] == "instances" && len(parts) >= 5 && (parts[4] == "logs" || len(parts) == 5 && parts[4] == "status.json"):
			u.logs += n
		default:
			u.leaked += n
			u.leakedPaths = append(u.leakedPaths, rel)
		}
		return nil
	})
	if err != nil {
		t.Errorf("walk %s: %v", dataDir, err)
	}
	if len(u.leakedPaths) > 10 {
		u.leakedPaths = append(u.leakedPaths[:10], "...")
	}
	t.Logf("data dir after stop: artifacts %d B, environments %d B, logs %d B, metadata %d B, leaked %d B %v",
		u.artifacts, u.envs, u.logs, u.metadata, u.leaked, u.leakedPaths)
	return u
}

// finish stops s gracefully and counts what it left behind: processes that mention its
// data dir 5 s after it exited, and leaked bytes in the data dir; both must be zero.
func finish(t *testing.T, s *server) (orphans int, leaked int64) {
	t.Helper()
	s.stop()
	left := orphansAfter(s.dataDir, 5*time.Second)
	for _, p := range left {
		t.Errorf("orphan process %d outlived berth serve: %q", p, strings.Join(cmdline(p), " "))
	}
	u := measureDisk(t, s.dataDir)
	if u.leaked != 0 {
		t.Errorf("stopped instances left %d bytes beyond logs and status.json: %v", u.leaked, u.leakedPaths)
	}
	if b, err := os.ReadDir(filepath.Join(s.dataDir, "instances")); err != nil || len(b) == 0 {
		t.Errorf("no instance folders to check in %s (%v)", s.dataDir, err)
	}
	return len(left), u.leaked
}
