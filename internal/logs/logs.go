// Package logs owns per-container log files: opening them for append, reading their
// tail, and stamping lines with the time.
package logs

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// OpenAppend opens path for appending, creating it and its folders.
func OpenAppend(path string) (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	return os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
}

// Tail returns the last n lines of the file at path (all of it when n <= 0). A missing
// file has no lines. The file is read backwards in chunks, so a big log costs only
// what is returned.
func Tail(path string, n int) ([]byte, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if n <= 0 {
		return io.ReadAll(f)
	}
	info, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := info.Size()
	const chunk = 64 << 10
	var buf []byte
	pos := size
	for pos > 0 {
		step := int64(chunk)
		if pos < step {
			step = pos
		}
		pos -= step
		part := make([]byte, step)
		if _, err := f.ReadAt(part, pos); err != nil && !errors.Is(err, io.EOF) {
			return nil, err
		}
		buf = append(part, buf...)
		// A trailing newline ends the last line; it does not start another.
		body := buf
		if len(body) > 0 && body[len(body)-1] == '\n' {
			body = body[:len(body)-1]
		}
		if bytes.Count(body, []byte{'\n'}) >= n {
			break
		}
	}
	body := buf
	trailing := len(body) > 0 && body[len(body)-1] == '\n'
	if trailing {
		body = body[:len(body)-1]
	}
	idx := len(body)
	for i := 0; i < n; i++ {
		j := bytes.LastIndexByte(body[:idx], '\n')
		if j < 0 {
			idx = 0
			break
		}
		idx = j
		if i == n-1 {
			idx = j + 1
		}
	}
	out := buf[idx:]
	if idx > 0 && idx <= len(buf) && buf[idx-1] != '\n' {
		out = buf[idx:]
	}
	return out, nil
}

// NewTimestamped returns a writer that starts every line written to w with the UTC
// time as "2006-01-02 15:04:05,000 ". It is safe for concurrent use.
func NewTimestamped(w io.Writer, now func() time.Time) io.Writer {
	if now == nil {
		now = time.Now
	}
	return &stamped{w: w, now: now, atStart: true}
}

type stamped struct {
	mu      sync.Mutex
	w       io.Writer
	now     func() time.Time
	atStart bool
}

func (s *stamped) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out bytes.Buffer
	for _, b := range p {
		if s.atStart {
			out.WriteString(Stamp(s.now()))
			out.WriteByte(' ')
			s.atStart = false
		}
		out.WriteByte(b)
		if b == '\n' {
			s.atStart = true
		}
	}
	if _, err := s.w.Write(out.Bytes()); err != nil {
		return 0, err
	}
	return len(p), nil
}

// stampLayout is the time layout of the Azure inference server's log lines.
const stampLayout = "2006-01-02 15:04:05,000"

// Stamp formats t as the log layout of the Azure inference server: "2006-01-02 15:04:05,000" in UTC.
func Stamp(t time.Time) string { return t.UTC().Format(stampLayout) }

// AppendStamp appends Stamp(t) to b.
func AppendStamp(b []byte, t time.Time) []byte { return t.UTC().AppendFormat(b, stampLayout) }
