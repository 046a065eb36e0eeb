package inference

import (
	"context"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// startLocal starts an in-process instance and waits until it is healthy.
func startLocal(t *testing.T, script string, workers int) *Instance {
	t.Helper()
	log := &lockedLog{}
	inst, err := Start(t.Context(), Config{EntryScript: filepath.Join("testdata", script), ModelDir: t.TempDir(), WorkerCount: workers, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(inst.Stop)
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if code, _ := scoreLocal(t.Context(), inst, "GET", "/", ""); code == 200 {
			return inst
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("instance not healthy; log:\n%s", log)
	return nil
}

// scoreLocal calls the instance's handler in-process, as berth serve's router does.
func scoreLocal(ctx context.Context, inst *Instance, method, path, body string) (int, string) {
	req := httptest.NewRequest(method, path, strings.NewReader(body)).WithContext(ctx)
	rec := httptest.NewRecorder()
	inst.Handler().ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

// Several requests in one worker's pipe still run one at a time, in the order they came.
func TestPipelinedRequestsRunInOrder(t *testing.T) {
	inst := startLocal(t, "echo_score.py", 1)
	bodies := []string{"sleep 0.3", "sleep 0.3", "call"}
	answers := make([]string, len(bodies))
	took := make([]time.Duration, len(bodies))
	var wg sync.WaitGroup
	start := time.Now()
	for i, b := range bodies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			code, out := scoreLocal(context.Background(), inst, "POST", "/score", b)
			if code != 200 {
				t.Errorf("%s: %d %s", b, code, out)
			}
			answers[i], took[i] = out, time.Since(start)
		}()
		time.Sleep(50 * time.Millisecond) // they reach the worker's pipe in this order
		if i == 0 {
			inst.p.mu.Lock()
			n := inst.p.ready[0].pipe.inflight.Load()
			inst.p.mu.Unlock()
			if n != 1 {
				t.Errorf("the first request is not in the worker's pipe")
			}
		}
	}
	wg.Wait()
	want := []string{`"slept, call 1"`, `"slept, call 2"`, `"call 3"`}
	for i := range want {
		if strings.TrimSpace(answers[i]) != want[i] {
			t.Errorf("request %d (%s) answered %s, want %s: run() is called in arrival order", i, bodies[i], answers[i], want[i])
		}
	}
	if took[2] < 550*time.Millisecond {
		t.Errorf("the fast request was answered after %s, before both slow ones had run: run() overlapped", took[2])
	}
}

// A request queued behind one whose client gave up is not lost: the abandoned one's
// worker is stopped, and the queued one is answered by the new worker.
func TestRequestBehindAnAbandonedOneGoesToAnotherWorker(t *testing.T) {
	inst := startLocal(t, "echo_score.py", 1)
	_, before := scoreLocal(context.Background(), inst, "POST", "/score", "pid")

	abandoned, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	first := make(chan int, 1)
	go func() {
		code, _ := scoreLocal(abandoned, inst, "POST", "/score", "sleep 5")
		first <- code
	}()
	time.Sleep(100 * time.Millisecond) // "sleep 5" is running in the only worker
	code, after := scoreLocal(context.Background(), inst, "POST", "/score", "pid")
	if code != 200 || after == before {
		t.Fatalf("the queued request: %d %s, want 200 from a new worker (the first was pid %s)", code, after, before)
	}
	if c := <-first; c != http.StatusGatewayTimeout {
		t.Fatalf("the abandoned request: %d, want 504", c)
	}
}

// A client that leaves while run() runs costs no worker when run() answers before the
// request's deadline; a run() still running at the deadline stops its worker, and the
// request queued behind it is answered by the new one.
func TestClientThatLeavesKeepsTheWorkerUntilTheDeadline(t *testing.T) {
	inst := startLocal(t, "echo_score.py", 1)
	_, before := scoreLocal(context.Background(), inst, "POST", "/score", "pid")
	leave := func(body string, deadline time.Duration) chan int {
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		done := make(chan int, 1)
		go func() {
			defer cancel()
			code, _ := scoreLocal(ctx, inst, "POST", "/score", body)
			done <- code
		}()
		time.Sleep(100 * time.Millisecond) // run() has started
		cancel()                           // the client leaves, before the deadline
		return done
	}
	if c := <-leave("sleep 0.3", 10*time.Second); c != http.StatusGatewayTimeout {
		t.Fatalf("the request whose client left: %d, want 504", c)
	}
	if code, after := scoreLocal(context.Background(), inst, "POST", "/score", "pid"); code != 200 || after != before {
		t.Fatalf("after a client left a short run(): %d pid %s, want the same worker (pid %s)", code, after, before)
	}

	start := time.Now()
	<-leave("sleep 30", time.Second)
	code, after := scoreLocal(context.Background(), inst, "POST", "/score", "pid")
	if code != 200 || after == before {
		t.Fatalf("the request queued behind a run() past its deadline: %d pid %s, want 200 from a new worker (was pid %s)", code, after, before)
	}
	if took := time.Since(start); took < 900*time.Millisecond {
		t.Errorf("the worker was stopped after %s, before the abandoned request's 1 s deadline", took)
	}
}

// Only the request that was running when its worker died gets 502; one queued behind
// it is answered by the replacement worker.
func TestOnlyTheRunningRequestFailsWhenItsWorkerDies(t *testing.T) {
	inst := startLocal(t, "echo_score.py", 1)
	dying := make(chan int, 1)
	go func() {
		code, _ := scoreLocal(context.Background(), inst, "POST", "/score", "sleep 0.2")
		dying <- code
	}()
	time.Sleep(50 * time.Millisecond)
	died := make(chan int, 1)
	go func() {
		code, _ := scoreLocal(context.Background(), inst, "POST", "/score", "die")
		died <- code
	}()
	time.Sleep(50 * time.Millisecond)
	code, out := scoreLocal(context.Background(), inst, "POST", "/score", "queued")
	if code != 200 || !strings.Contains(out, "queued") {
		t.Fatalf("the request queued behind the dying one: %d %s, want 200", code, out)
	}
	if c := <-dying; c != 200 {
		t.Errorf("the request before the dying one: %d, want 200", c)
	}
	if c := <-died; c != http.StatusBadGateway {
		t.Errorf("the request whose run() killed its worker: %d, want 502", c)
	}
}

// A freed slot goes to the longest-waiting request, one slot to one request; a request
// that arrives meanwhile queues behind the waiters instead of taking the slot first; a
// waiter that gives up after being handed a slot passes it on, so no slot is left unused.
func TestFreedSlotsGoToWaitersInArrivalOrder(t *testing.T) {
	w := &worker{}
	w.pipe.inflight.Store(pipelineDepth) // full: every acquire waits
	p := &pool{ready: []*worker{w}}
	waiters := func() int { p.mu.Lock(); defer p.mu.Unlock(); return len(p.waiters) }
	got := make(chan int, 4)
	order := make(chan int, pipelineDepth+1)
	for i := range 3 {
		go func() {
			if _, err := p.acquire(context.Background()); err == nil {
				got <- i
			}
		}()
		waitFor(t, func() bool { return waiters() == i+1 })
	}
	for want := range 3 {
		p.release(w)
		// A newcomer, arriving as the slot is freed and before its waiter has run, waits.
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
		if _, err := p.acquire(ctx); err == nil {
			t.Fatalf("a request arriving after %d waiters took the slot freed for the first of them", 3-want)
		}
		cancel()
		select {
		case i := <-got:
			if i != want {
				t.Fatalf("slot %d went to waiter %d, want %d (arrival order)", want, i, want)
			}
		case <-time.After(2 * time.Second):
			t.Fatalf("freed slot %d reached no waiter", want)
		}
		select {
		case i := <-got:
			t.Fatalf("one freed slot woke two waiters (%d too)", i)
		case <-time.After(20 * time.Millisecond):
		}
	}
	if n := w.pipe.inflight.Load(); n != pipelineDepth {
		t.Fatalf("%d calls counted in flight, want %d: a handed-over slot stays counted", n, pipelineDepth)
	}

	// A waiter that gives up just as it is handed a slot passes the slot on. Canceled
	// first, while the test holds the pool's lock, its select takes ctx.Done and it
	// waits for the lock; the slot is handed to it meanwhile, so it finds itself served.
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() { _, err := p.acquire(ctx); first <- err }()
	waitFor(t, func() bool { return waiters() == 1 })
	go func() {
		if _, err := p.acquire(context.Background()); err == nil {
			got <- 1
		}
	}()
	waitFor(t, func() bool { return waiters() == 2 })
	p.mu.Lock()
	cancel()
	time.Sleep(20 * time.Millisecond) // the first waiter wakes on ctx.Done and waits for the lock
	p.handOverLocked(w)               // what release does: the slot goes to the first waiter, which has given up
	p.mu.Unlock()
	if err := <-first; err == nil {
		t.Fatal("the first waiter took the slot after its context ended")
	}
	select {
	case <-got:
	case <-time.After(2 * time.Second):
		t.Fatal("the slot the first waiter gave up never reached the second")
	}

	// With nobody waiting, a freed slot is free.
	p.release(w)
	if n := w.pipe.inflight.Load(); n != pipelineDepth-1 {
		t.Fatalf("%d calls counted in flight after a release with no waiter, want %d", n, pipelineDepth-1)
	}

	// A new worker's slots go to the waiters, in arrival order, before anyone else.
	w.pipe.inflight.Store(pipelineDepth)
	for i := range pipelineDepth + 1 {
		go func() {
			if got, err := p.acquire(context.Background()); err == nil && got != w {
				order <- i
			}
		}()
		waitFor(t, func() bool { return waiters() == i+1 })
	}
	fresh := &worker{}
	p.mu.Lock()
	p.ready = append(p.ready, fresh)
	p.fillLocked(fresh)
	p.mu.Unlock()
	served := map[int]bool{}
	for range pipelineDepth {
		select {
		case i := <-order:
			served[i] = true
		case <-time.After(2 * time.Second):
			t.Fatalf("a new worker's slots reached %d of %d waiters", len(served), pipelineDepth)
		}
	}
	if served[pipelineDepth] {
		t.Fatalf("the last of %d waiters got a slot of the new worker before an earlier one (served: %v)", pipelineDepth+1, served)
	}
	if n, left := fresh.pipe.inflight.Load(), waiters(); n != pipelineDepth || left != 1 {
		t.Fatalf("new worker: %d slots handed over and %d waiters left, want %d and 1", n, left, pipelineDepth)
	}
	p.release(w) // the last waiter gets the next freed slot
	waitFor(t, func() bool { return waiters() == 0 })
}

// waitFor polls cond until it holds, for up to 2 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatal("condition not reached within 2 s")
}
