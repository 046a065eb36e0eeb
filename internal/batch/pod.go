package batch

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/berthml/berth/internal/inference"
)

// PodConfig is one pod of a job on a Kubernetes compute: `berth batch-worker`.
type PodConfig struct {
	// Server is the Berth server's URL, Token what the pod authenticates with, Job the
	// job's name, Run the id of the job's run the pod was started for.
	Server, Token, Job, Run string
	// Node is the pod's completion index; Processes its workers
	// (max_concurrency_per_instance).
	Node, Processes int
	// Worker is how to start each Python worker; its Env holds the deployment's
	// variables and AZUREML_MODEL_DIR.
	Worker inference.BatchWorkerConfig
	// Timeout bounds one run() call (the job's timeout setting).
	Timeout time.Duration
	// WorkDir holds each mini-batch's files while it runs.
	WorkDir string
	// RetryFor is how long the server may not answer (a restart) before the pod gives
	// up; 0 is 10 minutes.
	RetryFor time.Duration
	Log      *slog.Logger
	Client   *http.Client
}

// RunPod runs a pod's workers until the server has no more mini-batches for them. Each
// worker starts a Python process, joins its slot, and pulls mini-batches; after a
// timeout or a crash it starts a new process and joins again. It returns nil when
// every worker was told to exit, an error when the server could not be reached for
// RetryFor.
func RunPod(ctx context.Context, cfg PodConfig) error {
	if cfg.RetryFor <= 0 {
		cfg.RetryFor = 10 * time.Minute
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	errs := make([]error, max(cfg.Processes, 1))
	var wg sync.WaitGroup
	for p := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := &podWorker{cfg: cfg, process: p, dir: filepath.Join(cfg.WorkDir, fmt.Sprintf("process%03d", p))}
			errs[p] = pw.run(ctx)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// podWorker is one process slot of a pod.
type podWorker struct {
	cfg     PodConfig
	process int
	dir     string
	out     outBuffer // the Python worker's stdout and stderr since the last answer
	w       *inference.BatchWorker
	id      int
}

// errExit ends a pod worker: the server has no more mini-batches for it.
var errExit = errors.New("no more mini-batches")

func (pw *podWorker) run(ctx context.Context) error {
	defer func() {
		if pw.w != nil {
			pw.w.Stop(2 * time.Second)
		}
	}()
	for ctx.Err() == nil {
		err := pw.joinOnce(ctx)
		if err == nil {
			err = pw.serve(ctx)
		}
		if errors.Is(err, errExit) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return ctx.Err()
}

// joinOnce starts a Python worker and joins the slot with it, or reports its init()
// failure (the server decides whether to try again).
func (pw *podWorker) joinOnce(ctx context.Context) error {
	j := podJoin{Run: pw.cfg.Run}
	if pw.w != nil {
		pw.w.Stop(2 * time.Second)
		pw.w = nil
	}
	j.Stdout, j.Stderr = pw.out.take() // the last words of the worker before
	wc := pw.cfg.Worker
	wc.Stdout, wc.Stderr = io.MultiWriter(os.Stdout, &pw.out.stdout), io.MultiWriter(os.Stderr, &pw.out.stderr)
	wc.Label = []string{"--job", pw.cfg.Job}
	w, err := inference.StartBatchWorker(ctx, wc)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var be *inference.BatchWorkerError
		if errors.As(err, &be) {
			j.Error, j.Traceback = be.Err.Message, be.Traceback
		} else {
			j.Error = err.Error()
		}
		pw.cfg.Log.Warn("init() failed", "process", pw.process, "err", j.Error)
	} else {
		pw.w, j.PID = w, w.Pid()
	}
	var got struct{ Worker int }
	status, _, err := pw.call(ctx, VerbJoin, j, &got)
	switch {
	case err != nil:
		return err
	case status == http.StatusGone:
		return errExit
	case j.Error != "":
		return nil // the slot decides: it gives up (410 at the next join) or waits for another
	}
	pw.id = got.Worker
	return nil
}

// serve pulls and runs mini-batches until the server lets the worker go.
func (pw *podWorker) serve(ctx context.Context) error {
	if pw.w == nil {
		return nil // init() failed: join again
	}
	var ans *podAnswer
	for ctx.Err() == nil {
		if ans == nil && pw.out.len() > 0 {
			ans = &podAnswer{MiniBatch: -1}
		}
		if ans != nil {
			ans.Stdout, ans.Stderr = pw.out.take()
		}
		status, resp, err := pw.call(ctx, VerbNext, podNext{Run: pw.cfg.Run, Worker: pw.id, Answer: ans}, nil)
		if err != nil {
			return err
		}
		ans = nil
		switch status {
		case http.StatusOK:
			ans = pw.runMiniBatch(ctx, resp)
			if ans.Timeout || ans.Lost != "" {
				pw.w = nil // killed or dead
			}
		case http.StatusAccepted:
		case http.StatusNoContent:
			pw.bye(ctx)
			return errExit
		case http.StatusGone:
			return errExit
		case http.StatusConflict:
			return nil // start a new Python worker and join again
		default:
			return fmt.Errorf("next mini-batch: the server answered %d", status)
		}
	}
	return ctx.Err()
}

// bye stops the Python worker, so that everything it wrote is in the buffer, and sends
// that to the server with the worker's last call.
func (pw *podWorker) bye(ctx context.Context) {
	if pw.w != nil {
		pw.w.Stop(2 * time.Second)
		pw.w = nil
	}
	a := &podAnswer{MiniBatch: -1}
	a.Stdout, a.Stderr = pw.out.take()
	pw.call(ctx, VerbNext, podNext{Run: pw.cfg.Run, Worker: pw.id, Answer: a, Bye: true}, nil)
}

// runMiniBatch unpacks a mini-batch's files and runs them through the Python worker.
func (pw *podWorker) runMiniBatch(ctx context.Context, resp *mbResponse) *podAnswer {
	a := &podAnswer{MiniBatch: resp.mb}
	dir := filepath.Join(pw.dir, strconv.Itoa(resp.mb))
	defer os.RemoveAll(dir)
	files, err := unpack(dir, resp.body)
	if err != nil {
		a.Lost = "receive the mini-batch's files: " + err.Error()
		return a
	}
	if pw.w == nil {
		a.Lost = "the worker is gone"
		return a
	}
	tctx, cancel := context.WithTimeout(ctx, pw.cfg.Timeout)
	ans, err := pw.w.Run(tctx, resp.mb, files)
	cancel()
	switch {
	case errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil:
		a.Timeout = true
	case err != nil:
		a.Lost = err.Error()
	case len(ans.Rows) > maxRows:
		a.Failed = true
		a.Message = fmt.Sprintf("the rows of mini-batch %d are %d MiB, more than the %d MiB a pod may send back: lower mini_batch_size", resp.mb, len(ans.Rows)>>20, maxRows>>20)
	default:
		a.Rows, a.Items, a.Failed, a.Message, a.Traceback = ans.Rows, ans.Items, ans.Failed, ans.Message, ans.Traceback
	}
	return a
}

// maxRows bounds the rows one answer carries, under what the server reads.
const maxRows = maxPodBody - 4*maxOutput

// mbResponse is a mini-batch as the server sent it.
type mbResponse struct {
	mb   int
	body []byte
}

// call posts body to the slot's verb, retrying network errors and 5xx for RetryFor.
// A 200 to next is returned as an mbResponse; out, when set, receives a JSON answer.
func (pw *podWorker) call(ctx context.Context, verb string, body, out any) (int, *mbResponse, error) {
	raw, err := json.Marshal(body)
	if err != nil {
		return 0, nil, err
	}
	url := fmt.Sprintf("%s/api/v1/jobs/%s/workers/%d/%d/%s", strings.TrimRight(pw.cfg.Server, "/"), pw.cfg.Job, pw.cfg.Node, pw.process, verb)
	deadline := time.Now().Add(pw.cfg.RetryFor)
	for wait := 200 * time.Millisecond; ; wait = min(2*wait, 5*time.Second) {
		status, resp, err := pw.post(ctx, url, raw, out)
		var se *statusError
		if err == nil && status < 500 {
			return status, resp, nil
		}
		if errors.As(err, &se) && se.status < 500 {
			return 0, nil, err // refused: trying again would be refused again
		}
		if err == nil {
			err = fmt.Errorf("%s answered %d", url, status)
		}
		if ctx.Err() != nil {
			return 0, nil, ctx.Err()
		}
		if time.Now().After(deadline) {
			return 0, nil, fmt.Errorf("the Berth server did not answer for %s: %w", pw.cfg.RetryFor, err)
		}
		pw.cfg.Log.Warn("the server did not answer; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (pw *podWorker) post(ctx context.Context, url string, raw []byte, out any) (int, *mbResponse, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(raw))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+pw.cfg.Token)
	resp, err := pw.cfg.Client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusUnauthorized:
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, nil, fmt.Errorf("the server refused the pod's token (%s): check the job's Secret", strings.TrimSpace(string(b)))
	case resp.StatusCode == http.StatusOK && resp.Header.Get(MiniBatchHeader) != "":
		mb, err := strconv.Atoi(resp.Header.Get(MiniBatchHeader))
		if err != nil {
			return 0, nil, fmt.Errorf("bad %s header %q", MiniBatchHeader, resp.Header.Get(MiniBatchHeader))
		}
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, nil, err
		}
		return resp.StatusCode, &mbResponse{mb: mb, body: b}, nil
	case resp.StatusCode == http.StatusOK && out != nil:
		return resp.StatusCode, nil, json.NewDecoder(resp.Body).Decode(out)
	}
	if resp.StatusCode >= 400 && resp.StatusCode != http.StatusConflict && resp.StatusCode != http.StatusGone {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return 0, nil, &statusError{status: resp.StatusCode, msg: strings.TrimSpace(string(b))}
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, nil, nil
}

// statusError is an answer of the server that refused a call, in its words.
type statusError struct {
	status int
	msg    string
}

func (e *statusError) Error() string {
	return fmt.Sprintf("the server answered %d: %s", e.status, e.msg)
}

// unpack writes a mini-batch's tar under dir and returns the files' paths in order.
func unpack(dir string, body []byte) ([]string, error) {
	tr := tar.NewReader(bytes.NewReader(body))
	var files []string
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return files, nil
		}
		if err != nil {
			return nil, err
		}
		name := filepath.Clean(filepath.FromSlash(h.Name))
		if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, ".."+string(filepath.Separator)) {
			return nil, fmt.Errorf("file name %q leaves the mini-batch's folder", h.Name)
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		f, err := os.Create(path)
		if err != nil {
			return nil, err
		}
		_, err = io.Copy(f, tr)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return nil, err
		}
		files = append(files, path)
	}
}

// outBuffer keeps what a Python worker writes until the next answer carries it.
type outBuffer struct {
	stdout, stderr lockedBuffer
}

func (o *outBuffer) len() int { return o.stdout.len() + o.stderr.len() }

func (o *outBuffer) take() (string, string) { return o.stdout.take(), o.stderr.take() }

// maxOutput bounds the output one answer carries; more is cut with a note.
const maxOutput = 1 << 20

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	cut bool
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len()+len(p) > maxOutput {
		b.cut = true
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Len()
}

func (b *lockedBuffer) take() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.buf.String()
	if b.cut {
		s += "\n[berth: output over 1 MiB between two mini-batches was cut here]\n"
	}
	b.buf.Reset()
	b.cut = false
	return s
}
