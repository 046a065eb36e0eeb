package fleet_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"time"

	"github.com/berthml/berth/internal/runtime"
)

// mode is how a fake instance behaves.
type mode int

const (
	modeReady      mode = iota // GET / answers 200
	modeExitEarly              // exits at once, before it is ready
	modeNeverReady             // GET / answers 503 until stopped
)

// errExited is how an instance in modeExitEarly ends.
var errExited = errors.New("exit status 3")

// fakeRuntime starts instances backed by httptest servers on loopback. It records an
// event log ("start 0", "ready 0", "stop 0") and the address of every index.
type fakeRuntime struct {
	mu     sync.Mutex
	modes  map[int]mode // by InstanceSpec.Index; missing means modeReady
	events []string
	addrs  map[int]string
	starts map[int]int
	stops  map[int]int
	insts  map[int]*fakeInstance // the last one started per index
}

var _ runtime.Runtime = (*fakeRuntime)(nil)

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{modes: map[int]mode{}, addrs: map[int]string{}, starts: map[int]int{}, stops: map[int]int{},
		insts: map[int]*fakeInstance{}}
}

func (r *fakeRuntime) setMode(index int, m mode) {
	r.mu.Lock()
	r.modes[index] = m
	r.mu.Unlock()
}

func (r *fakeRuntime) record(format string, args ...any) {
	r.mu.Lock()
	r.events = append(r.events, fmt.Sprintf(format, args...))
	r.mu.Unlock()
}

// Start implements runtime.Runtime.
func (r *fakeRuntime) Start(_ context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	r.mu.Lock()
	m := r.modes[spec.Index]
	r.starts[spec.Index]++
	r.events = append(r.events, fmt.Sprintf("start %d", spec.Index))
	r.mu.Unlock()
	in := &fakeInstance{rt: r, index: spec.Index, done: make(chan struct{})}
	var readyOnce sync.Once
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if m != modeReady {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		readyOnce.Do(func() { r.record("ready %d", spec.Index) })
	}))
	r.mu.Lock()
	r.addrs[spec.Index] = in.Addr()
	r.insts[spec.Index] = in
	r.mu.Unlock()
	if m == modeExitEarly {
		in.exit(errExited)
	}
	return in, nil
}

// crash makes the running instance index exit on its own, as a crashed process does.
func (r *fakeRuntime) crash(index int) {
	r.mu.Lock()
	in := r.insts[index]
	r.events = append(r.events, fmt.Sprintf("crash %d", index))
	r.mu.Unlock()
	in.exit(errExited)
}

// eventLog returns a copy of the events so far.
func (r *fakeRuntime) eventLog() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// counts returns how often index was started and stopped.
func (r *fakeRuntime) counts(index int) (starts, stops int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.starts[index], r.stops[index]
}

// started returns the indexes started so far, in order.
func (r *fakeRuntime) started() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for idx := range r.starts {
		out = append(out, idx)
	}
	slices.Sort(out)
	return out
}

// stopped returns the indexes stopped so far, in order.
func (r *fakeRuntime) stopped() []int {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []int
	for idx := range r.stops {
		out = append(out, idx)
	}
	slices.Sort(out)
	return out
}

func (r *fakeRuntime) addr(index int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addrs[index]
}

// fakeInstance is one started fake instance.
type fakeInstance struct {
	rt    *fakeRuntime
	index int
	srv   *httptest.Server
	done  chan struct{}

	once sync.Once
	err  error // set before done is closed
	stop sync.Once
}

func (in *fakeInstance) Addr() string { return in.srv.Listener.Addr().String() }

// Handler is nil: the fake is reached over HTTP, like an instance in a pod.
func (in *fakeInstance) Handler() http.Handler { return nil }
func (in *fakeInstance) Done() <-chan struct{} { return in.done }
func (in *fakeInstance) Err() error {
	select {
	case <-in.done:
		return in.err
	default:
		return nil
	}
}

func (in *fakeInstance) ExitCode() int {
	if errors.Is(in.Err(), errExited) {
		return 3
	}
	return -1
}

// exit ends the instance with err (once).
func (in *fakeInstance) exit(err error) {
	in.once.Do(func() {
		in.srv.Close()
		in.err = err
		close(in.done)
	})
}

// Stop closes the server and Done; only the first call is recorded.
func (in *fakeInstance) Stop(time.Duration) error {
	in.stop.Do(func() {
		in.exit(errors.New("signal: terminated"))
		in.rt.mu.Lock()
		in.rt.stops[in.index]++
		in.rt.events = append(in.rt.events, fmt.Sprintf("stop %d", in.index))
		in.rt.mu.Unlock()
	})
	return nil
}
