package server

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/berthml/berth/internal/wire"
)

// lockFileName is the file in the data dir that one `berth serve` holds an exclusive
// lock on while it runs; it holds that server's PID.
const lockFileName = "server.lock"

// errLocked is lockFile's answer when another holder has the lock.
var errLocked = errors.New("locked")

// DataDirInUseError is New's error when another `berth serve` holds the data dir.
type DataDirInUseError struct {
	// Dir is the data dir.
	Dir string
	// PID is the other server's process id; 0 when unknown.
	PID int
	// URL is the other server's URL from its server.json; "" when unknown.
	URL string
}

func (e *DataDirInUseError) Error() string {
	who := "another berth serve"
	if e.PID != 0 {
		who += " (pid " + strconv.Itoa(e.PID)
		if e.URL != "" {
			who += ", " + e.URL
		}
		who += ")"
	}
	return fmt.Sprintf("data dir %s is in use by %s; stop it first or choose another --data-dir", e.Dir, who)
}

// openDataDir creates the data dir, makes it private (0700) and locks it for this
// server. It returns the absolute path and the function that releases the lock.
func (s *Server) openDataDir() (string, func(), error) {
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return "", nil, fmt.Errorf("create data dir: %w", err)
	}
	dir, err := filepath.Abs(s.cfg.DataDir)
	if err != nil {
		return "", nil, fmt.Errorf("data dir: %w", err)
	}
	// 0700 on the folder protects everything below it (berth.db holds endpoint keys)
	// without a process-wide umask, which the Python workers would inherit.
	fi, err := os.Stat(dir)
	if err != nil {
		return "", nil, fmt.Errorf("data dir: %w", err)
	}
	if perm := fi.Mode().Perm(); perm != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return "", nil, fmt.Errorf("make data dir %s private: %w", dir, err)
		}
		s.log.Warn(fmt.Sprintf("data dir %s was %#o, now 0700", dir, perm))
	}
	unlock, err := lockDataDir(dir)
	if err != nil {
		return "", nil, err
	}
	return dir, unlock, nil
}

// lockDataDir takes the data dir's lock and writes this process's PID into it.
func lockDataDir(dir string) (func(), error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			return nil, inUse(dir)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	// The PID is in the lock file from the start; server.json (with the URL) comes
	// only once the server runs.
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}

// inUse describes the server that holds dir, from its lock file and server.json.
func inUse(dir string) *DataDirInUseError {
	e := &DataDirInUseError{Dir: dir}
	if b, err := os.ReadFile(filepath.Join(dir, lockFileName)); err == nil {
		e.PID, _ = strconv.Atoi(strings.TrimSpace(string(b)))
	}
	var info wire.ServerInfo
	if b, err := os.ReadFile(filepath.Join(dir, wire.ServerInfoFile)); err == nil && json.Unmarshal(b, &info) == nil &&
		(e.PID == 0 || info.PID == e.PID) {
		e.PID, e.URL = info.PID, info.URL
	}
	return e
}

// privateFiles creates berth.db as 0600 before SQLite opens it, and makes an existing
// database and its -wal/-shm files 0600: SQLite gives new -wal/-shm files the mode of
// the database file.
func privateFiles(db string) error {
	f, err := os.OpenFile(db, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("open metadata: %w", err)
	}
	f.Close()
	for _, p := range []string{db, db + "-wal", db + "-shm"} {
		if err := os.Chmod(p, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("make %s private: %w", p, err)
		}
	}
	return nil
}
