package inference

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/supervise"
)

// Conditions of a request the pool could not serve.
var (
	errWorkerDied = errors.New("worker process exited while scoring")
	errAbandoned  = errors.New("request ended while run() was running")
)

// frameHeader is the JSON header of a response frame.
type frameHeader struct {
	Ready        *bool  `json:"ready,omitempty"`
	Code         string `json:"code,omitempty"`
	Message      string `json:"message,omitempty"`
	PID          int    `json:"pid,omitempty"`
	WantsHeaders bool   `json:"hdr,omitempty"` // in the ready frame: run() reads request headers
	// Schema, in the ready frame, holds ServiceInput/ServiceOutput built from @input_schema/@output_schema.
	Schema  *swaggerSchemas `json:"schema,omitempty"`
	Status  int             `json:"s,omitempty"`
	Headers [][2]string     `json:"h,omitempty"`
	Ms      float64         `json:"ms,omitempty"`
	Failed  bool            `json:"failed,omitempty"`
	Server  bool            `json:"srv,omitempty"` // the worker refused the request before run()
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
}

// worker is one Python process and its two pipes.
type worker struct {
	proc *supervise.Process
	in   *os.File // we write requests here (its fd 3)
	out  *bufio.Reader
	outF *os.File
	buf  []byte
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

func readFrame(r *bufio.Reader) (frameHeader, []byte, error) {
	var h frameHeader
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return h, nil, err
	}
	hb := make([]byte, binary.BigEndian.Uint32(n[:]))
	if _, err := io.ReadFull(r, hb); err != nil {
		return h, nil, err
	}
	if err := json.Unmarshal(hb, &h); err != nil {
		return h, nil, fmt.Errorf("bad frame from worker: %w", err)
	}
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return h, nil, err
	}
	body := make([]byte, binary.BigEndian.Uint32(n[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		return h, nil, err
	}
	return h, body, nil
}

// pool supervises WorkerCount workers and lends idle ones to requests.
type pool struct {
	// wantsHeaders is set once the first worker is ready: whether run() reads request
	// headers, so they are only encoded for scripts that use them.
	wantsHeaders atomic.Bool
	schemas      atomic.Pointer[swaggerSchemas]
	cfg          Config
	script       string // worker.py source
	log          *logger
	idle         chan *worker
	wg           sync.WaitGroup
	ctx          context.Context
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
		Args:       []string{"-c", p.script, p.cfg.EntryScript},
		Env:        p.cfg.workerEnv(),
		Dir:        "",
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
	h, _, err := readFrame(w.out)
	if err != nil || h.Ready == nil {
		<-proc.Done()
		w.close()
		return nil, &diag.Error{Code: diag.UserScriptImportError,
			Message: fmt.Sprintf("the Python worker (%s) exited before it was ready (%v): check that %q runs Python 3.9 or newer", p.cfg.Python, proc.Err(), p.cfg.Python)}
	}
	if !*h.Ready {
		proc.Stop(time.Second)
		w.close()
		return nil, &diag.Error{Code: diag.Code(h.Code), Message: h.Message}
	}
	p.wantsHeaders.Store(h.WantsHeaders)
	if h.Schema != nil {
		p.schemas.Store(h.Schema)
	}
	return w, nil
}

// keep restarts a worker that died, with backoff, until the pool stops.
func (p *pool) replace() {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		backoff := supervise.Backoff{Initial: 200 * time.Millisecond, Max: 10 * time.Second, ResetAfter: time.Minute}
		for {
			w, err := p.start()
			if err == nil {
				p.log.info("", fmt.Sprintf("worker restarted with pid %d", w.proc.Pid()))
				select {
				case p.idle <- w:
				case <-p.ctx.Done():
					w.proc.Stop(2 * time.Second)
					w.close()
				}
				return
			}
			p.log.errorf("", "worker restart failed: %v", err)
			select {
			case <-time.After(backoff.Next(0)):
			case <-p.ctx.Done():
				return
			}
		}
	}()
}

// do runs one request on an idle worker.
func (p *pool) do(ctx context.Context, req requestHeader, body []byte) (frameHeader, []byte, error) {
	var w *worker
	select {
	case w = <-p.idle:
	case <-ctx.Done():
		return frameHeader{}, nil, ctx.Err()
	}
	hb, err := json.Marshal(req)
	if err != nil {
		p.idle <- w
		return frameHeader{}, nil, err
	}
	// A request that ends (client gone, router timeout) while run() is still going
	// leaves a worker nobody will read from: stop it so its capacity comes back.
	abandoned := context.AfterFunc(ctx, func() { w.proc.Stop(0) })
	w.buf, err = writeFrame(w.in, w.buf, hb, body)
	var h frameHeader
	var out []byte
	if err == nil {
		h, out, err = readFrame(w.out)
	}
	if !abandoned() && err == nil {
		// The worker was stopped although it answered: it is replaced below.
		err = errAbandoned
	}
	if err != nil {
		// The worker is gone or broken: make sure it is dead, report it, replace it.
		w.proc.Stop(time.Second)
		w.close()
		p.replace()
		if ctx.Err() != nil {
			return h, nil, errAbandoned
		}
		return h, nil, fmt.Errorf("%w: %v", errWorkerDied, w.proc.Err())
	}
	p.idle <- w
	return h, out, nil
}

// stop stops every worker.
func (p *pool) stop() {
	p.wg.Wait()
	for {
		select {
		case w := <-p.idle:
			w.proc.Stop(2 * time.Second)
			w.close()
		default:
			return
		}
	}
}
