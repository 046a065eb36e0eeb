package instance

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berthml/berth/internal/diag"
)

// Status is the content of an instance's status file (--status_file): the error that
// stopped its start, or the phase timings once it is ready.
type Status struct {
	Error  *diag.Error `json:"error,omitempty"`
	Phases *Phases     `json:"phases,omitempty"`
}

// Phases times an instance's start, in milliseconds: the slowest worker's import of
// score.py and init(), and the whole start until every worker was ready.
type Phases struct {
	ImportMs float64 `json:"import_ms"`
	InitMs   float64 `json:"init_ms"`
	ReadyMs  float64 `json:"ready_ms"`
}

// WriteStatus replaces the status file at path with s. A reader sees the old content
// or the new, never a partial file: s is written to a temporary file that is renamed.
func WriteStatus(path string, s Status) error {
	b, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), filepath.Base(path)+".*.tmp")
	if err != nil {
		return fmt.Errorf("write status: %w", err)
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(tmp.Name(), 0o644)
	}
	if werr == nil {
		werr = os.Rename(tmp.Name(), path)
	}
	if werr != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write status: %w", werr)
	}
	return nil
}

// ReadStatus reads the status file at path. A missing file is an error that wraps
// fs.ErrNotExist: the instance has not written one yet.
func ReadStatus(path string) (Status, error) {
	var s Status
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("read status: %w", err)
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return Status{}, fmt.Errorf("read status %s: %w", path, err)
	}
	return s, nil
}
