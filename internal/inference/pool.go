package inference

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/supervise"
)

// Conditions of a request the pool could not serve.
var (
	errWorkerDied = errors.New("worker process exited while scoring")
	errAbandoned  = errors.New("request ended while run() was running")
	// errClientGone: the client left while run() was running; its worker lives on.
	errClientGone = errors.New("the client closed the connection while run() was running")
)

// frameHeader is the JSON header of a response frame.
type frameHeader struct {
	Ready        *bool  `json:"ready,omitempty"`
	Code         string `json:"code,omitempty"`
	Message      string `json:"message,omitempty"`
	PID          int    `json:"pid,omitempty"`
	WantsHeaders bool   `json:"hdr,omitempty"` // in the ready frame: run() reads request headers
	Raw          bool   `json:"raw,omitempty"` // in the ready frame: run() takes an AMLRequest (@rawhttp)
	// Schema, in the ready frame, holds ServiceInput/ServiceOutput built from @input_schema/@output_schema.
	Schema *swaggerSchemas `json:"schema,omitempty"`
	// ImportMs and InitMs, in the ready frame, time the import of score.py and init().
	ImportMs float64     `json:"import_ms,omitempty"`
	InitMs   float64     `json:"init_ms,omitempty"`
	Status   int         `json:"s,omitempty"`
	Headers  [][2]string `json:"h,omitempty"`
	Ms       float64     `json:"ms,omitempty"`
	Failed   bool        `json:"failed,omitempty"`
	Server   bool        `json:"srv,omitempty"` // the worker refused the request before run()
	// Stream marks the first frame of an answer run() streams (it returned a generator):
	// Chunk frames follow, then an End frame, with Err when the generator raised.
	Stream bool   `json:"stream,omitempty"`
	Chunk  bool   `json:"chunk,omitempty"`
	End    bool   `json:"end,omitempty"`
	Err    string `json:"err,omitempty"`
}

// swaggerSchemas are the JSON schemas of run()'s input and output.
type swaggerSchemas struct {
	Input  json.RawMessage `json:"input"`
	Output json.RawMessage `json:"output"`
}

// requestHeader is the JSON header of a request frame.
type requestHeader struct {
	ID      string            `json:"id"`
	Method  string            `json:"m"`
	Query   string            `json:"q,omitempty"`
	Headers map[string]string `json:"h,omitempty"`
	// TimeoutMs is SCORING_TIMEOUT_MS: the worker interrupts run() after it (0: never).
	TimeoutMs int64 `json:"to,omitempty"`
	// Remote is the client's address, for a run() that reads request headers.
	Remote string `json:"ra,omitempty"`
	// Ping asks the worker to answer at once, without calling run(): a liveness check.
	Ping bool `json:"ping,omitempty"`
	// Collect says the request is sampled by the data collector: the worker's
	// Collector.collect() writes its records (all of a request's collections or none).
	Collect bool `json:"dc,omitempty"`
}

// encode writes h as JSON. The common request (no headers, plain ids) is written
// directly, byte for byte what encoding/json writes; anything else goes to encoding/json.
func (h *requestHeader) encode() ([]byte, error) {
	if h.Headers != nil || h.Remote != "" || h.Ping || !plainJSON(h.ID) || !plainJSON(h.Method) || !plainJSON(h.Query) {
		return json.Marshal(h)
	}
	b := make([]byte, 0, 32+len(h.ID)+len(h.Method)+len(h.Query))
	b = append(append(append(b, `{"id":"`...), h.ID...), `","m":"`...)
	b = append(append(b, h.Method...), '"')
	if h.Query != "" {
		b = append(append(append(b, `,"q":"`...), h.Query...), '"')
	}
	if h.TimeoutMs != 0 {
		b = strconv.AppendInt(append(b, `,"to":`...), h.TimeoutMs, 10)
	}
	if h.Collect {
		b = append(b, `,"dc":true`...)
	}
	return append(b, '}'), nil
}

// plainJSON reports whether s is written as it is inside a JSON string by
// encoding/json: printable ASCII without quotes, backslashes or HTML characters.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// worker is one Python process and its two pipes.
type worker struct {
	proc   *supervise.Process
	in     *os.File // we write requests here (its fd 3)
	out    *bufio.Reader
	outF   *os.File
	pipe   pipe
	killed atomic.Bool // stopped on purpose: its exit is not a crash
	dead   atomic.Bool // its output ended: it takes no more requests
}

// kill stops the worker on purpose.
func (w *worker) kill(grace time.Duration) {
	w.killed.Store(true)
	w.proc.Stop(grace)
}

func (w *worker) close() {
	w.in.Close()
	w.outF.Close()
}

func writeFrame(w io.Writer, scratch []byte, header, body []byte) ([]byte, error) {
	scratch = scratch[:0]
	scratch = binary.BigEndian.AppendUint32(scratch, uint32(len(header)))
	scratch = append(scratch, header...)
	scratch = binary.BigEndian.AppendUint32(scratch, uint32(len(body)))
	scratch = append(scratch, body...)
	_, err := w.Write(scratch)
	return scratch, err
}

// readFrame reads one answer frame of an online worker.
// jsonOK is how the worker's most common answer header begins (_JSON_OK in worker.py):
// run() returned a value sent as JSON; only the milliseconds and "}" follow.
var jsonOK = []byte(`{"s":200,"h":[["Content-Type","application/json"]],"ms":`)

// jsonOKHeaders are the headers of that answer, shared read-only by every answer.
var jsonOKHeaders = [][2]string{{"Content-Type", "application/json"}}

// parseJSONOK reads the most common answer header without encoding/json, and reports
// whether b was one.
func (h *frameHeader) parseJSONOK(b []byte) bool {
	if len(b) < len(jsonOK)+2 || !bytes.HasPrefix(b, jsonOK) || b[len(b)-1] != '}' {
		return false
	}
	ms, err := strconv.ParseFloat(string(b[len(jsonOK):len(b)-1]), 64)
	if err != nil {
		return false
	}
	*h = frameHeader{Status: 200, Headers: jsonOKHeaders, Ms: ms}
	return true
}

func readFrame(r *bufio.Reader) (frameHeader, []byte, error) {
	var h frameHeader
	body, err := readFrameInto(r, &h)
	return h, body, err
}

// readFrameInto reads one frame from a worker: its JSON header into h, and its body.
func readFrameInto(r *bufio.Reader, h any) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	hn := binary.BigEndian.Uint32(n[:])
	if hn > maxFrameHeader {
		return nil, fmt.Errorf("bad frame from worker: a header of %d bytes (the most is %d)", hn, maxFrameHeader)
	}
	hb := make([]byte, hn)
	if _, err := io.ReadFull(r, hb); err != nil {
		return nil, err
	}
	if fh, ok := h.(*frameHeader); !ok || !fh.parseJSONOK(hb) {
		if err := json.Unmarshal(hb, h); err != nil {
			return nil, fmt.Errorf("bad frame from worker: %w", err)
		}
	}
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	return readBody(r, binary.BigEndian.Uint32(n[:]))
}

// Frame size limits: a header is a little JSON; a body is a request or an answer.
const (
	maxFrameHeader = 1 << 20
	maxFrameBody   = 1 << 30
	// preallocBody is the largest body read into a buffer of its declared size at once;
	// larger ones grow with the bytes that actually arrive, so a bad length cannot make
	// the server allocate what the worker never sends.
	preallocBody = 1 << 20
)

// readBody reads a frame body of n bytes.
func readBody(r io.Reader, n uint32) ([]byte, error) {
	if n > maxFrameBody {
		return nil, fmt.Errorf("bad frame from worker: a body of %d bytes (the most is %d)", n, maxFrameBody)
	}
	if n <= preallocBody {
		body := make([]byte, n)
		if _, err := io.ReadFull(r, body); err != nil {
			return nil, err
		}
		return body, nil
	}
	var buf bytes.Buffer
	buf.Grow(preallocBody)
	if _, err := io.CopyN(&buf, r, int64(n)); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return buf.Bytes(), nil
}

// pool supervises WorkerCount workers and sends each request to the least busy one.
type pool struct {
	// phases holds the slowest import and init() times of the first workers.
	phasesMu sync.Mutex
	phases   instance.Phases
	// wantsHeaders is set once the first worker is ready: whether run() reads request
	// headers, so they are only encoded for scripts that use them.
	wantsHeaders atomic.Bool
	// raw is set when run() takes the whole request (@rawhttp): it also answers OPTIONS.
	raw     atomic.Bool
	schemas atomic.Pointer[swaggerSchemas]
	// fatal receives an error when workers keep dying; Serve then exits so that the
	// supervisor of the instance sees the crash loop.
	fatal   chan error
	mu      sync.Mutex
	deaths  []time.Time
	live    map[*worker]struct{} // every started worker not yet exited; guarded by mu
	ready   []*worker            // workers that take requests; guarded by mu
	waiters []chan *worker       // requests waiting for a slot, oldest first: each is sent the worker whose slot it is handed; guarded by mu
	cfg     Config
	log     *logger
	wg      sync.WaitGroup
	done    <-chan struct{} // closed when the pool stops: no worker is replaced after it
}

// start launches one worker and waits for its ready frame; a startup failure is a *diag.Error.
func (p *pool) start() (*worker, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, err
	}
	proc, err := supervise.Start(supervise.Command{
		Path:       p.cfg.Python,
		Args:       workerArgs(p.cfg.EntryScript, p.cfg.Label...),
		Env:        p.cfg.workerEnv(),
		Dir:        p.cfg.Dir,
		Stdout:     p.cfg.Log,
		Stderr:     p.cfg.Log,
		ExtraFiles: []*os.File{inR, outW},
	})
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, &diag.Error{Code: diag.UserScriptImportError,
			Message: fmt.Sprintf("cannot start the Python interpreter %q: %v; install python3 or choose an interpreter with --python / BERTH_PYTHON", p.cfg.Python, err)}
	}
	w := &worker{proc: proc, in: inW, outF: outR, out: bufio.NewReaderSize(outR, 64<<10)}
	p.track(w)
	h, _, err := readFrame(w.out)
	if err != nil || h.Ready == nil {
		<-proc.Done()
		p.untrack(w)
		w.close()
		return nil, &diag.Error{Code: diag.UserScriptImportError,
			Message: fmt.Sprintf("the Python worker (%s) exited before it was ready (%v): check that %q runs Python 3.9 or newer", p.cfg.Python, proc.Err(), p.cfg.Python)}
	}
	if !*h.Ready {
		proc.Stop(time.Second)
		p.untrack(w)
		w.close()
		return nil, &diag.Error{Code: diag.Code(h.Code), Message: h.Message}
	}
	p.wantsHeaders.Store(h.WantsHeaders)
	p.raw.Store(h.Raw)
	p.phasesMu.Lock()
	p.phases.ImportMs = max(p.phases.ImportMs, h.ImportMs)
	p.phases.InitMs = max(p.phases.InitMs, h.InitMs)
	p.phasesMu.Unlock()
	if h.Schema != nil {
		p.schemas.Store(h.Schema)
	}
	p.wg.Add(1)
	go p.watch(w)
	return w, nil
}

// watch waits for a worker to exit and replaces it; it is the only place a worker is
// replaced. An exit nobody asked for counts towards the crash-loop limit.
func (p *pool) watch(w *worker) {
	defer p.wg.Done()
	<-w.proc.Done()
	p.remove(w)
	p.untrack(w)
	w.pipe.mu.Lock()
	w.dead.Store(true) // no request is written to it after this
	w.pipe.mu.Unlock()
	w.close() // its reader, if still reading, ends and answers the queued calls
	if p.stopping() {
		return
	}
	cause := WorkerStopped
	if !w.killed.Load() {
		cause = WorkerCrashed
		p.log.errorf("", "worker with pid %d exited: %v", w.proc.Pid(), w.proc.Err())
		if p.died() {
			return
		}
	}
	if p.cfg.WorkerExited != nil {
		p.cfg.WorkerExited(cause)
	}
	p.replace()
}

// Why a worker was replaced (Config.WorkerExited).
const (
	// WorkerCrashed: the worker exited by itself (a crash, os._exit, killed by the OS).
	WorkerCrashed = "worker_crashed"
	// WorkerStopped: Berth stopped it, because a request or a liveness ping ended while
	// it was still in run(), or it answered garbage.
	WorkerStopped = "worker_stopped"
)

// died records an unexpected worker exit and reports whether the instance should stop.
func (p *pool) died() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	kept := p.deaths[:0]
	for _, t := range p.deaths {
		if now.Sub(t) < instance.WorkerCrashLoopWindow {
			kept = append(kept, t)
		}
	}
	p.deaths = append(kept, now)
	if len(p.deaths) < instance.WorkerCrashLoopExits {
		return false
	}
	select {
	case p.fatal <- fmt.Errorf("workers exited %d times within %s, so the instance stops and is restarted (the log above says why they exit)", len(p.deaths), instance.WorkerCrashLoopWindow):
	default:
	}
	return true
}

// replace starts a new worker in place of one that exited, retrying with backoff until
// the pool stops.
func (p *pool) replace() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		backoff := instance.WorkerBackoff()
		for {
			w, err := p.start()
			if err == nil {
				p.log.info("", fmt.Sprintf("worker restarted with pid %d", w.proc.Pid()))
				p.add(w) // stopped by the pool's stop if it is stopping
				return
			}
			p.log.errorf("", "worker restart failed: %v", err)
			select {
			case <-time.After(backoff.Next(0)):
			case <-p.done:
				return
			}
		}
	}()
}

// stopping reports whether the pool is stopping.
func (p *pool) stopping() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// ping checks that a worker answers before ctx ends. A worker that does not (a
// hung or stopped process) is killed and replaced, as an abandoned request's is.
func (p *pool) ping(ctx context.Context) error {
	_, _, _, err := p.do(ctx, requestHeader{Ping: true}, nil)
	return err
}

// stop stops every worker, idle, busy or starting, and waits for the pool's
// goroutines. The pool's done channel must be closed first.
func (p *pool) stop() {
	p.killAll()
	p.wg.Wait()
}

// killAll stops every live worker, in parallel, and waits for them to exit.
func (p *pool) killAll() {
	p.mu.Lock()
	all := make([]*worker, 0, len(p.live))
	for w := range p.live {
		all = append(all, w)
	}
	p.mu.Unlock()
	var stopping sync.WaitGroup
	for _, w := range all {
		stopping.Add(1)
		go func() {
			defer stopping.Done()
			w.kill(2 * time.Second)
		}()
	}
	stopping.Wait()
}

// track records a started worker; one started while the pool stops is stopped at once.
func (p *pool) track(w *worker) {
	p.mu.Lock()
	if p.live == nil {
		p.live = map[*worker]struct{}{}
	}
	p.live[w] = struct{}{}
	p.mu.Unlock()
	if p.stopping() {
		w.kill(0)
	}
}

func (p *pool) untrack(w *worker) {
	p.mu.Lock()
	delete(p.live, w)
	p.mu.Unlock()
}

// pids returns the process ids of the live workers.
func (p *pool) pids() []int {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]int, 0, len(p.live))
	for w := range p.live {
		out = append(out, w.proc.Pid())
	}
	return out
}
