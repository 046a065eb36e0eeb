package inference

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"

	"github.com/berthml/berth/internal/instance"
)

// Payload logging: the reserved collections request and response are written here, on
// the Go side, from the bytes the handler already holds (the worker's time stays
// run()'s); Collector.collect() in score.py writes the other collections from the
// worker (worker.py). Both write the same record shape to the same layout.

// collectAgent names the writer in each record, as Azure's collector names its SDK.
const collectAgent = "berth/payload-logging"

// partition is the folder of t for rolling rate rate, in UTC, as Azure's blob paths
// (Hour when rate is unknown).
func partition(t time.Time, rate string) string {
	layout := "2006/01/02/15"
	switch rate {
	case "Minute":
		layout = "2006/01/02/15/04"
	case "Day":
		layout = "2006/01/02"
	case "Month":
		layout = "2006/01"
	case "Year":
		layout = "2006"
	}
	return t.UTC().Format(layout)
}

// record is one collected line, Azure's model data collector record (a CloudEvent):
// the payload in data (JSON as it was, else a string), or data_base64 for bytes that are
// not UTF-8; correlationid and xrequestid are the request's x-request-id.
type record struct {
	SpecVersion     string            `json:"specversion"`
	ID              string            `json:"id"`
	Source          string            `json:"source"`
	Type            string            `json:"type"`
	DataContentType string            `json:"datacontenttype"`
	Time            string            `json:"time"`
	Data            json.RawMessage   `json:"data,omitempty"`
	DataBase64      string            `json:"data_base64,omitempty"`
	CorrelationID   string            `json:"correlationid"`
	XRequestID      string            `json:"xrequestid"`
	StatusCode      int               `json:"statuscode,omitempty"`
	Headers         map[string]string `json:"headers,omitempty"`
	ModelVersion    string            `json:"modelversion"`
	Agent           string            `json:"agent"`
}

// collector writes one instance's payload logging and decides which requests are
// sampled. nil collects nothing.
type collector struct {
	cfg    *instance.Collector
	source string
	prefix string // file names: <prefix>-<seq>.jsonl
	now    func() time.Time
	mu     sync.Mutex
	files  map[string]*rollingFile
	closed bool // set by close: later records are dropped, no file is reopened
}

func newCollector(cfg *instance.Collector) *collector {
	if cfg == nil {
		return nil
	}
	return &collector{cfg: cfg, source: "/endpoints/" + cfg.Endpoint + "/deployments/" + cfg.Deployment,
		prefix: fmt.Sprintf("i%d-s%d", cfg.Instance, os.Getpid()), now: time.Now, files: map[string]*rollingFile{}}
}

// sample decides whether a request is collected, once for all its collections.
func (c *collector) sample() bool {
	if c == nil {
		return false
	}
	return c.cfg.SamplingRate >= 1 || rand.Float64() < c.cfg.SamplingRate
}

// request logs a sampled request's body, with the headers capture_headers names.
func (c *collector) request(r *http.Request, rid string, body []byte) error {
	if !c.cfg.Has("request") {
		return nil
	}
	rec := c.record("request", rid, r.Header.Get("Content-Type"), body)
	for _, h := range c.cfg.Headers {
		if v := r.Header.Values(h); len(v) > 0 {
			if rec.Headers == nil {
				rec.Headers = map[string]string{}
			}
			rec.Headers[strings.ToLower(h)] = strings.Join(v, ", ")
		}
	}
	return c.write("request", rec)
}

// response logs the answer of a sampled request.
func (c *collector) response(rid string, status int, contentType string, body []byte) error {
	if !c.cfg.Has("response") {
		return nil
	}
	rec := c.record("response", rid, contentType, body)
	rec.StatusCode = status
	return c.write("response", rec)
}

func (c *collector) record(collection, rid, contentType string, body []byte) record {
	rec := record{SpecVersion: "1.0", ID: uuid.NewString(), Source: c.source, Type: "azureml.inference." + collection,
		DataContentType: contentType, Time: c.now().UTC().Format("2006-01-02T15:04:05.000Z"),
		CorrelationID: rid, XRequestID: rid, ModelVersion: "default", Agent: collectAgent}
	switch {
	case len(body) == 0:
	case json.Valid(body):
		rec.Data = body
		if rec.DataContentType == "" {
			rec.DataContentType = "application/json"
		}
	case utf8.Valid(body):
		rec.Data, _ = json.Marshal(string(body))
	default:
		rec.DataBase64 = base64.StdEncoding.EncodeToString(body)
	}
	if rec.DataContentType == "" {
		rec.DataContentType = "application/octet-stream"
	}
	return rec
}

// write appends rec as one line to the collection's current file.
func (c *collector) write(collection string, rec record) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(rec); err != nil { // one line: Encode compacts data and ends with \n
		return fmt.Errorf("collect %s: %w", collection, err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		// The instance has stopped while a request was still in the handler: its
		// record is dropped rather than reopening a file nobody would close.
		return nil
	}
	f := c.files[collection]
	if f == nil {
		f = &rollingFile{dir: filepath.Join(c.cfg.Dir, collection), prefix: c.prefix, rate: c.cfg.RollingRate, max: c.cfg.MaxFileBytes}
		c.files[collection] = f
	}
	if err := f.write(c.now(), buf.Bytes()); err != nil {
		return fmt.Errorf("collect %s: %w", collection, err)
	}
	return nil
}

// close closes every open file; records written after it are dropped.
func (c *collector) close() {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	for _, f := range c.files {
		f.close()
	}
}

// rollingFile is the file one writer appends a collection's lines to: a new one when
// the time partition changes, and when the next line would take it past max bytes.
// Only this writer writes to it (the name carries the instance and the process), and
// each line is one write on an O_APPEND descriptor, so no line is ever interleaved.
type rollingFile struct {
	dir, prefix, rate string
	max               int64
	part              string
	f                 *os.File
	size              int64
	seq               int
}

func (r *rollingFile) write(now time.Time, line []byte) error {
	part := partition(now, r.rate)
	if r.f == nil || part != r.part || (r.size > 0 && r.size+int64(len(line)) > r.max) {
		if err := r.open(part, int64(len(line))); err != nil {
			return err
		}
	}
	n, err := r.f.Write(line)
	r.size += int64(n)
	return err
}

// open opens the next file of partition part: the first of the sequence with room for
// need more bytes (a restarted writer appends to its last file).
func (r *rollingFile) open(part string, need int64) error {
	seq := 0
	if r.f != nil {
		r.f.Close()
		if part == r.part {
			seq = r.seq + 1
		}
		r.f = nil
	}
	dir := filepath.Join(r.dir, filepath.FromSlash(part))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for ; ; seq++ {
		f, err := os.OpenFile(filepath.Join(dir, fmt.Sprintf("%s-%03d.jsonl", r.prefix, seq)), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			return err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return err
		}
		if fi.Size() == 0 || fi.Size()+need <= r.max {
			r.f, r.part, r.size, r.seq = f, part, fi.Size(), seq
			return nil
		}
		f.Close()
	}
}

func (r *rollingFile) close() {
	if r.f != nil {
		r.f.Close()
		r.f = nil
	}
}
