package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
)

// entry is one line of the journal: a mini-batch that ended, succeeded or finally failed.
type entry struct {
	MB    int    `json:"mb"`
	OK    bool   `json:"ok"`
	Files int    `json:"files"`
	Items int    `json:"items,omitempty"`
	Err   string `json:"err,omitempty"`
}

// journal makes each finished mini-batch durable before it counts: its rows go to
// Dir/parts/<index> (temp file, fsync, rename), then a line to Dir/journal (fsync). A
// mini-batch in the journal is never run again; one that was running when the process
// died is not in it and runs again, its part simply rewritten.
type journal struct {
	f     *os.File
	parts string
}

// openJournal reads Dir/journal, drops a torn last line (a crash mid-append), and opens
// it for appending. Entries for mini-batches beyond n are ignored.
func openJournal(dir string, n int) (*journal, map[int]entry, error) {
	path := filepath.Join(dir, "journal")
	done := map[int]entry{}
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	good := 0 // bytes of whole, valid lines
	for good < len(b) {
		nl := bytes.IndexByte(b[good:], '\n')
		if nl < 0 {
			break
		}
		var e entry
		if json.Unmarshal(b[good:good+nl], &e) != nil {
			break
		}
		if e.MB >= 0 && e.MB < n {
			done[e.MB] = e
		}
		good += nl + 1
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, nil, err
	}
	if good < len(b) {
		if err := f.Truncate(int64(good)); err != nil {
			f.Close()
			return nil, nil, err
		}
	}
	if _, err := f.Seek(int64(good), 0); err != nil {
		f.Close()
		return nil, nil, err
	}
	parts := filepath.Join(dir, "parts")
	if err := os.MkdirAll(parts, 0o755); err != nil {
		f.Close()
		return nil, nil, err
	}
	return &journal{f: f, parts: parts}, done, nil
}

// commit makes a finished mini-batch durable: its rows, then its journal line.
func (jr *journal) commit(e entry, rows []byte) error {
	if e.OK {
		if err := writeDurable(jr.part(e.MB), rows); err != nil {
			return fmt.Errorf("write the rows of mini-batch %d: %w", e.MB, err)
		}
	}
	line, err := json.Marshal(e)
	if err != nil {
		return err
	}
	if _, err := jr.f.Write(append(line, '\n')); err != nil {
		return fmt.Errorf("write the journal: %w", err)
	}
	return jr.f.Sync()
}

// part is the file of a mini-batch's rows.
func (jr *journal) part(mb int) string { return filepath.Join(jr.parts, strconv.Itoa(mb)) }

func (jr *journal) close() { jr.f.Close() }

// writeDurable writes b to path through a temp file, fsync and rename, then syncs the
// folder, so path holds either its old content or b, whole.
func writeDurable(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return err
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
