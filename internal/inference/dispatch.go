package inference

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// pipelineDepth is how many requests one worker may have in flight: written to its pipe
// and not yet answered. The worker still runs them one at a time, in order; the depth
// lets it read the next request while Go reads the answer to the last, and lets both
// sides move several frames per wake-up under load.
const pipelineDepth = 4

// call is one request in a worker's pipe.
type call struct {
	done     chan result // buffered: the reader never blocks on it
	canceled atomic.Bool // abandoned while queued: its answer is dropped
	stream   *stream     // set by the reader once a streamed answer began
}

// stream is the rest of an answer that run() streams: its chunks in order, then the end.
type stream struct {
	chunks  chan []byte   // closed after the last chunk
	abandon chan struct{} // closed by the consumer when it stops reading
	once    sync.Once
	err     error  // why the stream ended early; read after chunks is closed
	stop    func() // stops the worker that streams (a consumer that gives up calls it)
}

// Next returns the next chunk, io.EOF after the last one, or the error that cut the
// stream short. When ctx ends first, the stream is abandoned: run() is still running
// for nobody, so its worker is stopped, as for any abandoned request.
func (s *stream) Next(ctx context.Context) ([]byte, error) {
	select {
	case b, ok := <-s.chunks:
		if ok {
			return b, nil
		}
		if s.err != nil {
			return nil, s.err
		}
		return nil, io.EOF
	case <-ctx.Done():
		s.Abandon()
		return nil, ctx.Err()
	}
}

// Abandon drops the rest of the stream and stops the worker producing it.
func (s *stream) Abandon() {
	s.once.Do(func() {
		close(s.abandon)
		s.stop()
	})
}

// result is how a call ended. retry means it never reached run() (its worker died
// while it was queued): it goes to another worker.
type result struct {
	h      frameHeader
	body   []byte
	stream *stream // the rest of a streamed answer, or nil
	err    error
	retry  bool
}

// pipe is the in-flight side of a worker: the calls written to it, oldest first.
type pipe struct {
	mu       sync.Mutex // guards queue, buf and writes to the worker's stdin
	queue    []*call
	buf      []byte
	inflight atomic.Int32
}

// add makes a started worker available to requests and starts its reader. Requests
// waiting for a slot get the new worker's slots first, in arrival order.
func (p *pool) add(w *worker) {
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		p.read(w)
	}()
	p.mu.Lock()
	p.ready = append(p.ready, w)
	p.fillLocked(w)
	p.mu.Unlock()
}

// fillLocked hands w's free slots to waiting requests, longest-waiting first (a new
// worker's, or the one a request gave back). p.mu is held, as for every in-flight count.
func (p *pool) fillLocked(w *worker) {
	for len(p.waiters) > 0 && w.pipe.inflight.Load() < pipelineDepth {
		w.pipe.inflight.Add(1)
		p.handOverLocked(w)
	}
}

// remove takes a worker that exited out of the ready set.
func (p *pool) remove(w *worker) {
	p.mu.Lock()
	for i, r := range p.ready {
		if r == w {
			p.ready = append(p.ready[:i], p.ready[i+1:]...)
			break
		}
	}
	p.mu.Unlock()
}

// handOverLocked gives a counted slot on w to the longest-waiting request. p.mu is held.
func (p *pool) handOverLocked(w *worker) {
	p.waiters[0] <- w // buffered: a waiter is sent one worker
	p.waiters = p.waiters[1:]
}

// acquire returns the live worker with the fewest calls in flight, waiting while every
// worker is pipelineDepth deep, until ctx ends. Waiters are served in arrival order: a
// freed slot, or a new worker's, is handed to the longest-waiting request, and a request
// that arrives while others wait queues behind them rather than taking a slot first.
// So while anyone waits, every live worker is full.
func (p *pool) acquire(ctx context.Context) (*worker, error) {
	p.mu.Lock()
	if len(p.waiters) == 0 {
		var best *worker
		for _, w := range p.ready {
			n := w.pipe.inflight.Load()
			if !w.dead.Load() && n < pipelineDepth && (best == nil || n < best.pipe.inflight.Load()) {
				best = w
			}
		}
		if best != nil {
			best.pipe.inflight.Add(1)
			p.mu.Unlock()
			return best, nil
		}
	}
	ch := make(chan *worker, 1)
	p.waiters = append(p.waiters, ch)
	p.mu.Unlock()
	select {
	case w := <-ch:
		return w, nil // a slot handed over, already counted
	case <-ctx.Done():
	}
	p.mu.Lock()
	i := slices.Index(p.waiters, ch)
	if i >= 0 {
		p.waiters = slices.Delete(p.waiters, i, i+1)
	}
	p.mu.Unlock()
	if i < 0 {
		p.release(<-ch) // handed a slot just as ctx ended: it is passed on
	}
	return nil, ctx.Err()
}

// release gives back the slot acquire took: to the longest-waiting request if any,
// directly, so no request that arrives meanwhile takes it first. A dead worker's slot
// goes to nobody.
func (p *pool) release(w *worker) {
	p.mu.Lock()
	defer p.mu.Unlock()
	w.pipe.inflight.Add(-1)
	if !w.dead.Load() {
		p.fillLocked(w)
	}
}

// do runs one request on a worker and returns run()'s answer; st, when not nil, brings
// the rest of an answer run() streams. A request whose worker died before it reached
// run() is sent to another worker.
func (p *pool) do(ctx context.Context, req requestHeader, body []byte) (h frameHeader, out []byte, st *stream, err error) {
	hb, err := req.encode()
	if err != nil {
		return frameHeader{}, nil, nil, err
	}
	for {
		w, err := p.acquire(ctx)
		if err != nil {
			return frameHeader{}, nil, nil, err
		}
		r := w.send(ctx, hb, body)
		p.release(w)
		if !r.retry {
			return r.h, r.body, r.stream, r.err
		}
	}
}

// send writes one request to the worker's pipe and waits for its answer. When ctx
// ends first, a request still queued is only dropped; one that run() is running (the
// oldest in the pipe) is handed to stopIfStillRunning.
func (w *worker) send(ctx context.Context, header, body []byte) result {
	c := &call{done: make(chan result, 1)}
	w.pipe.mu.Lock()
	if w.dead.Load() {
		w.pipe.mu.Unlock()
		return result{retry: true}
	}
	w.pipe.queue = append(w.pipe.queue, c)
	// A failed write means the worker is gone: its reader answers every queued call.
	w.pipe.buf, _ = writeFrame(w.in, w.pipe.buf, header, body)
	w.pipe.mu.Unlock()
	select {
	case r := <-c.done:
		return r
	case <-ctx.Done():
	}
	w.pipe.mu.Lock()
	running := len(w.pipe.queue) > 0 && w.pipe.queue[0] == c
	c.canceled.Store(true)
	w.pipe.mu.Unlock()
	if running {
		return result{err: w.stopIfStillRunning(ctx, c)}
	}
	return result{err: errAbandoned}
}

// stopIfStillRunning deals with a run() that nobody waits for any more. Past the
// request's deadline (request_timeout_ms, WORKER_TIMEOUT) the worker is stopped at
// once, so its capacity comes back and the requests queued behind go to other workers.
// A client that left before the deadline costs no more than if it had stayed: run()
// may still answer (the answer is dropped) until that deadline, and only a run() still
// running then stops its worker. Without a deadline, run() is left to finish.
func (w *worker) stopIfStillRunning(ctx context.Context, c *call) error {
	deadline, ok := ctx.Deadline()
	if !errors.Is(ctx.Err(), context.Canceled) || (ok && !time.Now().Before(deadline)) {
		w.kill(0)
		return errAbandoned
	}
	if ok {
		time.AfterFunc(time.Until(deadline), func() {
			w.pipe.mu.Lock()
			running := len(w.pipe.queue) > 0 && w.pipe.queue[0] == c
			w.pipe.mu.Unlock()
			if running {
				w.kill(0)
			}
		})
	}
	return errClientGone
}

// read delivers the worker's answers to their calls, in order, until the worker's
// output ends; then the oldest call gets errWorkerDied and the rest are retried.
func (p *pool) read(w *worker) {
	for {
		h, body, err := readFrame(w.out)
		w.pipe.mu.Lock()
		if err != nil {
			w.dead.Store(true)
			queue := w.pipe.queue
			w.pipe.queue = nil
			w.pipe.mu.Unlock()
			died := w.died()
			for i, c := range queue {
				switch {
				case i == 0 && c.stream != nil:
					c.stream.err = died // the answer began: it is cut short
					close(c.stream.chunks)
				case i == 0:
					c.done <- result{err: died}
				default:
					c.done <- result{retry: true}
				}
			}
			return
		}
		c := w.pipe.queue[0]
		if c.stream == nil && !h.Stream {
			w.pipe.queue = w.pipe.queue[1:] // answered in one frame
		}
		if h.End {
			w.pipe.queue = w.pipe.queue[1:]
		}
		w.pipe.mu.Unlock()
		deliver(w, c, h, body)
	}
}

// deliver hands one answer frame to its call: the whole answer, the first frame of a
// stream, or one of its chunks or its end.
func deliver(w *worker, c *call, h frameHeader, body []byte) {
	switch {
	case c.stream == nil && h.Stream:
		c.stream = &stream{chunks: make(chan []byte, 8), abandon: make(chan struct{}), stop: func() { w.kill(0) }}
		if c.canceled.Load() {
			c.stream.Abandon() // nobody waits: the generator runs for nobody
			return
		}
		c.done <- result{h: h, body: body, stream: c.stream}
	case c.stream == nil:
		if !c.canceled.Load() {
			c.done <- result{h: h, body: body}
		}
	case h.End:
		if h.Err != "" {
			c.stream.err = fmt.Errorf("run() raised while streaming: %s", h.Err)
		}
		close(c.stream.chunks)
	default:
		select {
		case c.stream.chunks <- body:
		case <-c.stream.abandon:
		}
	}
}

// died waits briefly for a worker whose output ended and says how it ended: gone by
// itself (its watcher counts and replaces it), or alive but speaking garbage (stopped).
func (w *worker) died() error {
	select {
	case <-w.proc.Done():
	case <-time.After(time.Second):
		w.kill(0)
	}
	return fmt.Errorf("%w: %v", errWorkerDied, w.proc.Err())
}
