package controller_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/berthml/berth/internal/runtime"
)

// fakeRuntime starts instances backed by httptest servers on loopback; it never runs
// Python. Deployments named in neverReady answer GET / with 503. It records, per
// "deployment/index", how often an instance was started and stopped, its address, and
// whether its entry script was in place when it started.
type fakeRuntime struct {
	mu         sync.Mutex
	neverReady map[string]bool
	startErr   map[string]error // Start fails for these deployments
	starts     map[string]int
	stops      map[string]int
	addrs      map[string]string
	scripts    map[string]bool
}

var _ runtime.Runtime = (*fakeRuntime)(nil)

func newFakeRuntime() *fakeRuntime {
	return &fakeRuntime{neverReady: map[string]bool{}, startErr: map[string]error{}, starts: map[string]int{}, stops: map[string]int{},
		addrs: map[string]string{}, scripts: map[string]bool{}}
}

func instanceName(deployment string, index int) string {
	return fmt.Sprintf("%s/%d", deployment, index)
}

// Start implements runtime.Runtime.
func (r *fakeRuntime) Start(_ context.Context, spec runtime.InstanceSpec) (runtime.Instance, error) {
	name := instanceName(spec.Deployment, spec.Index)
	_, err := os.Stat(spec.EntryScript)
	r.mu.Lock()
	if err := r.startErr[spec.Deployment]; err != nil {
		r.mu.Unlock()
		return nil, err
	}
	ready := !r.neverReady[spec.Deployment]
	r.starts[name]++
	r.scripts[name] = err == nil
	r.mu.Unlock()
	in := &fakeInstance{done: make(chan struct{})}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if !ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	in.onStop = func() {
		r.mu.Lock()
		r.stops[name]++
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.addrs[name] = in.Addr()
	r.mu.Unlock()
	return in, nil
}

// setNeverReady makes the deployment's instances answer GET / with 503.
func (r *fakeRuntime) setNeverReady(deployment string) {
	r.mu.Lock()
	r.neverReady[deployment] = true
	r.mu.Unlock()
}

// failStarts makes Start fail with err for the deployment.
func (r *fakeRuntime) failStarts(deployment string, err error) {
	r.mu.Lock()
	r.startErr[deployment] = err
	r.mu.Unlock()
}

// counts returns how often an instance was started and stopped.
func (r *fakeRuntime) counts(deployment string, index int) (starts, stops int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	name := instanceName(deployment, index)
	return r.starts[name], r.stops[name]
}

// balanced reports whether every instance of the deployment that started was stopped
// as often, and how many starts there were.
func (r *fakeRuntime) balanced(deployment string) (starts int, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	ok = true
	for name, n := range r.starts {
		if strings.HasPrefix(name, deployment+"/") {
			starts += n
			ok = ok && r.stops[name] == n
		}
	}
	return starts, ok
}

func (r *fakeRuntime) addr(deployment string, index int) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.addrs[instanceName(deployment, index)]
}

func (r *fakeRuntime) hadScript(deployment string, index int) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.scripts[instanceName(deployment, index)]
}

// fakeInstance is one started fake instance.
type fakeInstance struct {
	srv    *httptest.Server
	done   chan struct{}
	onStop func()
	once   sync.Once
}

var errStopped = errors.New("signal: terminated")

func (in *fakeInstance) Addr() string { return in.srv.Listener.Addr().String() }

// Handler is nil: the fake is reached over HTTP, like an instance in a pod.
func (in *fakeInstance) Handler() http.Handler { return nil }
func (in *fakeInstance) Done() <-chan struct{} { return in.done }
func (in *fakeInstance) ExitCode() int         { return -1 }

func (in *fakeInstance) Err() error {
	select {
	case <-in.done:
		return errStopped
	default:
		return nil
	}
}

// Stop closes the server and Done; only the first call counts.
func (in *fakeInstance) Stop(time.Duration) error {
	in.once.Do(func() {
		in.srv.Close()
		close(in.done)
		in.onStop()
	})
	return nil
}

// allowStarts undoes failStarts.
func (r *fakeRuntime) allowStarts(deployment string) {
	r.mu.Lock()
	delete(r.startErr, deployment)
	r.mu.Unlock()
}
