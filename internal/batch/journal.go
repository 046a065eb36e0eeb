package batch

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// entry is the header of one journal record: a mini-batch that ended, succeeded or
// finally failed. Its rows follow the header line: N bytes whose CRC-32 is CRC.
type entry struct {
	MB    int    `json:"mb"`
	OK    bool   `json:"ok"`
	Files int    `json:"files"`
	Items int    `json:"items,omitempty"`
	Err   string `json:"err,omitempty"`
	N     int    `json:"n,omitempty"`
	CRC   uint32 `json:"crc,omitempty"`
}

// span is where a mini-batch's rows are in the journal file.
type span struct{ off, n int64 }

// record is a finished mini-batch waiting to be made durable.
type record struct {
	e    entry
	rows []byte
	done func(error)
}

// journal makes each finished mini-batch durable before it counts: one append-only
// file of records (a JSON header line, then the mini-batch's rows), written and fsynced
// by one flusher that takes every record waiting at each turn, so workers that finish
// together share one write and one fsync (group commit). A mini-batch in the journal is
// never run again; one that was running when the process died is not in it and runs
// again. The output file is the rows of the journal in mini-batch order.
type journal struct {
	f *os.File

	mu       sync.Mutex
	queue    []record
	flushing bool
	wg       sync.WaitGroup
	size     int64        // bytes of whole records in the file; written by the flusher
	spans    map[int]span // rows of each journaled mini-batch
	// err is the first write that failed: every later record fails with it, so nothing
	// written after a torn record counts as durable.
	err error
}

// openJournal reads Dir/journal, drops a torn last record (a crash mid-append), and
// opens it for appending. Records for mini-batches beyond n are ignored.
func openJournal(dir string, n int) (*journal, map[int]entry, error) {
	path := filepath.Join(dir, "journal")
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	jr := &journal{spans: map[int]span{}}
	done := map[int]entry{}
	good := 0 // bytes of whole, valid records
	for good < len(b) {
		e, next, ok := parseRecord(b, good)
		if !ok {
			break
		}
		if e.MB >= 0 && e.MB < n {
			done[e.MB] = e
			jr.spans[e.MB] = span{off: int64(next - e.N), n: int64(e.N)}
		}
		good = next
	}
	if jr.f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644); err != nil {
		return nil, nil, err
	}
	if good < len(b) {
		if err := jr.f.Truncate(int64(good)); err != nil {
			jr.f.Close()
			return nil, nil, err
		}
	}
	if _, err := jr.f.Seek(int64(good), io.SeekStart); err != nil {
		jr.f.Close()
		return nil, nil, err
	}
	jr.size = int64(good)
	return jr, done, nil
}

// parseRecord reads the record at b[at:]: its header and where the next one starts.
func parseRecord(b []byte, at int) (entry, int, bool) {
	nl := bytes.IndexByte(b[at:], '\n')
	if nl < 0 {
		return entry{}, 0, false
	}
	var e entry
	if json.Unmarshal(b[at:at+nl], &e) != nil || e.N < 0 {
		return entry{}, 0, false
	}
	start := at + nl + 1
	if len(b)-start < e.N || crc32.ChecksumIEEE(b[start:start+e.N]) != e.CRC {
		return entry{}, 0, false
	}
	return e, start + e.N, true
}

// add queues a finished mini-batch; done is called, from the flusher, once it is
// durable or could not be written.
func (jr *journal) add(e entry, rows []byte, done func(error)) {
	jr.mu.Lock()
	defer jr.mu.Unlock()
	jr.queue = append(jr.queue, record{e: e, rows: rows, done: done})
	if !jr.flushing {
		jr.flushing = true
		jr.wg.Add(1)
		go jr.flush()
	}
}

// syncEvery is the least time between two turns of the flusher: the records that end
// meanwhile share the next write and fsync. An fsync costs the disk and the CPU the
// workers run on; a mini-batch counts at most this much later.
const syncEvery = 5 * time.Millisecond

// flush writes the waiting records, one write and one fsync per turn, until none wait.
func (jr *journal) flush() {
	defer jr.wg.Done()
	var buf bytes.Buffer
	var last time.Time
	for {
		if wait := syncEvery - time.Since(last); !last.IsZero() && wait > 0 {
			time.Sleep(wait)
		}
		last = time.Now()
		jr.mu.Lock()
		batch := jr.queue
		jr.queue = nil
		if len(batch) == 0 {
			jr.flushing = false
			jr.mu.Unlock()
			return
		}
		jr.mu.Unlock()
		buf.Reset()
		spans := make([]span, len(batch))
		for i, r := range batch {
			r.e.N, r.e.CRC = len(r.rows), crc32.ChecksumIEEE(r.rows)
			head, _ := json.Marshal(r.e)
			buf.Write(head)
			buf.WriteByte('\n')
			spans[i] = span{off: jr.size + int64(buf.Len()), n: int64(len(r.rows))}
			buf.Write(r.rows)
		}
		err := jr.err
		if err == nil {
			if _, err = jr.f.Write(buf.Bytes()); err == nil {
				err = jr.f.Sync()
			}
			if err != nil {
				err = fmt.Errorf("write the journal: %w", err)
				jr.err = err
				// Cut what was written of the batch, so a resumed job reads whole records.
				jr.f.Truncate(jr.size)
				jr.f.Seek(jr.size, io.SeekStart)
			}
		}
		if err == nil {
			jr.mu.Lock()
			for i, r := range batch {
				jr.spans[r.e.MB] = spans[i]
			}
			jr.size += int64(buf.Len())
			jr.mu.Unlock()
		}
		for _, r := range batch {
			r.done(err)
		}
	}
}

// wait waits until every added record has been written (or failed).
func (jr *journal) wait() { jr.wg.Wait() }

// wholeUnder is the journal size up to which the output is cut from one read of the
// whole journal rather than one read per mini-batch.
const wholeUnder = 64 << 20

// rowsReader returns a function that gives the rows of a journaled mini-batch: from
// one read of the whole journal when it is small, else one read per mini-batch.
func (jr *journal) rowsReader() (func(mb int) ([]byte, error), error) {
	jr.mu.Lock()
	size := jr.size
	jr.mu.Unlock()
	var whole []byte
	if size <= wholeUnder {
		whole = make([]byte, size)
		if _, err := jr.f.ReadAt(whole, 0); err != nil {
			return nil, err
		}
	}
	return func(mb int) ([]byte, error) {
		jr.mu.Lock()
		sp, ok := jr.spans[mb]
		jr.mu.Unlock()
		if !ok {
			return nil, fmt.Errorf("mini-batch %d is not in the journal", mb)
		}
		if whole != nil {
			return whole[sp.off : sp.off+sp.n], nil
		}
		b := make([]byte, sp.n)
		_, err := jr.f.ReadAt(b, sp.off)
		return b, err
	}, nil
}

func (jr *journal) close() {
	jr.wait()
	jr.f.Close()
}

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
