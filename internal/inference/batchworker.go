package inference

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/supervise"
)

// ErrBatchWorkerDied is a batch worker whose process ended while it ran a mini-batch (or
// before its ready frame); the error wrapping it says how the process ended.
var ErrBatchWorkerDied = errors.New("the batch worker process exited")

// BatchWorkerConfig is how to start one Python worker in batch mode.
type BatchWorkerConfig struct {
	Python string
	// Env holds KEY=VALUE variables the worker gets besides the server's own; the worker
	// also gets BERTH_WORKER_MODE=batch and one thread per numerical library unless set.
	Env         []string
	Dir         string // working directory
	EntryScript string // absolute path of the scoring script
	// Stdout and Stderr receive the worker's fds 1 and 2 as written (files, so that
	// nothing is lost when the worker is killed); nil discards.
	Stdout, Stderr io.Writer
	// LoggingLevel is passed to the script as --logging_level (default info).
	LoggingLevel string
	// Label are extra worker arguments that name it in `ps` (--job J --process P); the
	// script sees only --logging_level.
	Label []string
}

// BatchStdio is where one of a job's workers writes its fds 1 and 2.
type BatchStdio struct{ Stdout, Stderr *os.File }

// BatchWorkerError is an init() or import failure: Err carries the error in the script's
// words, Traceback the whole Python traceback.
type BatchWorkerError struct {
	Err       *diag.Error
	Traceback string
}

func (e *BatchWorkerError) Error() string { return e.Err.Error() }

// Unwrap gives the *diag.Error to diag.As.
func (e *BatchWorkerError) Unwrap() error { return e.Err }

// BatchAnswer is what run() did with one mini-batch.
type BatchAnswer struct {
	// Rows are the output rows, one per line, each ended by a newline.
	Rows  []byte
	Items int
	// Failed is a run() that raised: Message is "<Type>: <text>", Traceback the whole one.
	Failed             bool
	Message, Traceback string
}

// Empty reports a run() that returned nothing (None or no rows) without raising.
func (a BatchAnswer) Empty() bool { return !a.Failed && a.Items == 0 }

// workerProc is the process of a batch worker: one Berth started, or one forked by the
// first worker of a job (forkedProc).
type workerProc interface {
	Pid() int
	Err() error
	Stop(grace time.Duration) error
}

// BatchWorker is one Python process in batch mode that has run init().
type BatchWorker struct {
	proc    workerProc
	in      *os.File
	outF    *os.File
	out     *bufio.Reader
	scratch []byte
	sent    []int // mini-batches sent and not yet received, oldest first
}

// batchHeader is the JSON header of a batch worker's frames.
type batchHeader struct {
	Ready   *bool  `json:"ready,omitempty"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
	Trace   string `json:"trace,omitempty"`
	PID     int    `json:"pid,omitempty"`
	Items   int    `json:"items,omitempty"`
	Empty   bool   `json:"empty,omitempty"`
	Failed  bool   `json:"failed,omitempty"`
}

// StartBatchWorker starts a worker and waits until it has imported the script and run
// init(). A failure there is a *BatchWorkerError; when ctx ends first the worker is
// killed and ctx's error returned.
func StartBatchWorker(ctx context.Context, cfg BatchWorkerConfig) (*BatchWorker, error) {
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
		Path:       cfg.Python,
		Args:       workerArgs(cfg.EntryScript, append([]string{"--logging_level", loggingLevel(cfg)}, cfg.Label...)...),
		Env:        batchEnv(cfg.Env),
		Dir:        cfg.Dir,
		Stdout:     cfg.Stdout,
		Stderr:     cfg.Stderr,
		ExtraFiles: []*os.File{inR, outW},
	})
	inR.Close()
	outW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, &BatchWorkerError{Err: &diag.Error{Code: diag.UserScriptImportError,
			Message: fmt.Sprintf("cannot start the Python interpreter %q: %v", cfg.Python, err)}}
	}
	w := &BatchWorker{proc: proc, in: inW, outF: outR, out: bufio.NewReaderSize(outR, 64<<10)}
	stop := context.AfterFunc(ctx, w.Kill)
	h, _, err := readBatchFrame(w.out)
	if !stop() {
		w.Kill()
		return nil, ctx.Err()
	}
	if err != nil || h.Ready == nil {
		<-proc.Done()
		w.close()
		return nil, &BatchWorkerError{Err: &diag.Error{Code: diag.UserScriptImportError,
			Message: fmt.Sprintf("the Python worker (%s) exited before it was ready (%v): check that %q runs Python 3.9 or newer", cfg.Python, proc.Err(), cfg.Python)}}
	}
	if !*h.Ready {
		w.Kill()
		de := hinted(ctx, instance.MachineInterpreters(), cfg.Python, &diag.Error{Code: diag.Code(h.Code), Message: h.Message})
		return nil, &BatchWorkerError{Err: de, Traceback: h.Trace}
	}
	return w, nil
}

// loggingLevel is the level the script gets as --logging_level.
func loggingLevel(cfg BatchWorkerConfig) string {
	if cfg.LoggingLevel == "" {
		return "info"
	}
	return cfg.LoggingLevel
}

// batchEnv is the server's environment and extra, plus batch mode and one thread per
// numerical library unless set.
func batchEnv(extra []string) []string {
	env := append(os.Environ(), extra...)
	for _, k := range threadVars() {
		set := false
		for _, kv := range env {
			if strings.HasPrefix(kv, k+"=") {
				set = true
				break
			}
		}
		if !set {
			env = append(env, k+"=1")
		}
	}
	return append(env, "BERTH_WORKER_MODE=batch")
}

// Run runs one mini-batch: Send, then Recv. ctx bounds the run (its end kills the
// worker).
func (w *BatchWorker) Run(ctx context.Context, index int, files []string) (BatchAnswer, error) {
	if err := w.Send(index, files); err != nil {
		return BatchAnswer{}, err
	}
	return w.Recv(ctx)
}

// MaxPipelined bounds the request bytes Send may leave in a worker's pipe while it runs
// an earlier mini-batch, well under a pipe's buffer, so Send never blocks on a busy worker.
const MaxPipelined = 32 << 10

// Send writes a mini-batch to the worker's pipe. The worker runs it once it has
// answered the mini-batches sent before it; Recv returns the answers in order.
func (w *BatchWorker) Send(index int, files []string) error {
	header, err := json.Marshal(map[string]int{"mb": index})
	if err != nil {
		return err
	}
	body, err := json.Marshal(files)
	if err != nil {
		return err
	}
	if w.scratch, err = writeFrame(w.in, w.scratch, header, body); err != nil {
		w.Kill()
		return fmt.Errorf("%w (%v) while sending mini-batch %d", ErrBatchWorkerDied, w.proc.Err(), index)
	}
	w.sent = append(w.sent, index)
	return nil
}

// RequestSize is how many bytes Send writes for a mini-batch of files, near enough.
func RequestSize(files []string) int {
	n := 64
	for _, f := range files {
		n += len(f) + 4
	}
	return n
}

// Recv waits for the answer to the oldest mini-batch sent. When ctx ends first (the
// timeout of a run()) or the worker dies, the worker is killed: the mini-batches sent
// after that one never reached run().
func (w *BatchWorker) Recv(ctx context.Context) (BatchAnswer, error) {
	if len(w.sent) == 0 {
		return BatchAnswer{}, errors.New("batch worker: Recv without a mini-batch sent")
	}
	index := w.sent[0]
	w.sent = w.sent[1:]
	stop := context.AfterFunc(ctx, w.Kill)
	defer stop()
	h, rows, err := readBatchFrame(w.out)
	if err == nil {
		return BatchAnswer{Rows: rows, Items: h.Items, Failed: h.Failed, Message: h.Message, Traceback: h.Trace}, nil
	}
	w.sawEOF(err)
	w.Kill()
	if ctx.Err() != nil {
		return BatchAnswer{}, ctx.Err()
	}
	return BatchAnswer{}, fmt.Errorf("%w (%v) while running mini-batch %d", ErrBatchWorkerDied, w.proc.Err(), index)
}

// Kill stops the worker's process group at once and closes its pipes; it is safe to call
// more than once.
func (w *BatchWorker) Kill() {
	w.proc.Stop(0)
	w.close()
}

// Stop ends an idle worker gently: its input is closed, so it returns from its loop and
// exits, which closes its answers (EOF); after grace it is killed.
func (w *BatchWorker) Stop(grace time.Duration) {
	w.in.Close()
	w.outF.SetReadDeadline(time.Now().Add(grace))
	_, err := io.Copy(io.Discard, w.out)
	if err == nil {
		w.sawEOF(io.EOF)
	}
	w.Kill()
}

// sawEOF notes that a forked worker's answers ended: it has exited.
func (w *BatchWorker) sawEOF(err error) {
	if f, ok := w.proc.(interface{ exited() }); ok && (errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)) {
		f.exited()
	}
}

// Pid is the worker's process id.
func (w *BatchWorker) Pid() int { return w.proc.Pid() }

func (w *BatchWorker) close() {
	w.in.Close()
	w.outF.Close()
}

// readBatchFrame reads one frame of a batch worker (the framing of readFrame, with the
// batch header).
func readBatchFrame(r *bufio.Reader) (batchHeader, []byte, error) {
	var h batchHeader
	body, err := readFrameInto(r, &h)
	return h, body, err
}
