package fleet

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/runtime"
)

// probe runs the readiness and liveness probes of a running instance until ctx ends:
// failure_threshold readiness failures in a row take it out of routing and
// success_threshold successes bring it back; failure_threshold liveness failures stop it,
// so its keeper restarts it.
func (f *Fleet) probe(ctx context.Context, m *member, inst runtime.Instance) {
	rp, lp := m.want.Readiness, m.want.Liveness
	ready := time.NewTicker(max(rp.Period, time.Second))
	defer ready.Stop()
	live := time.NewTicker(max(lp.Period, time.Second))
	defer live.Stop()
	var readyFails, readyOKs, liveFails int
	for {
		select {
		case <-ctx.Done():
			return
		case <-ready.C:
			ok := check(ctx, inst, rp.Timeout)
			m.mu.Lock()
			state := m.state
			m.mu.Unlock()
			if !ok {
				readyFails, readyOKs = readyFails+1, 0
				if readyFails == rp.FailureThreshold && state == instance.Ready {
					f.setProbeState(ctx, m, instance.NotReady, fmt.Sprintf("readiness probe failed %d times in a row: instance %d is out of routing until it answers GET / again", readyFails, m.index))
				}
				continue
			}
			readyOKs, readyFails = readyOKs+1, 0
			if readyOKs >= rp.SuccessThreshold && state == instance.NotReady {
				f.setProbeState(ctx, m, instance.Ready, fmt.Sprintf("readiness probe passed %d times: instance %d is back in routing", readyOKs, m.index))
			}
		case <-live.C:
			if check(ctx, inst, lp.Timeout) {
				liveFails = 0
				continue
			}
			liveFails++
			if liveFails >= lp.FailureThreshold {
				f.note(m, fmt.Sprintf("liveness probe failed %d times in a row: restarting instance %d", liveFails, m.index))
				inst.Stop(0)
				return
			}
		}
	}
}

// check sends one probe: GET / must answer 200 within timeout. An in-process instance
// is asked through its handler, one reached over HTTP at its address.
func check(ctx context.Context, inst runtime.Instance, timeout time.Duration) bool {
	cctx, cancel := context.WithTimeout(ctx, max(timeout, time.Second))
	defer cancel()
	if h := inst.Handler(); h != nil {
		return probeHandler(cctx, h)
	}
	req, err := http.NewRequestWithContext(cctx, http.MethodGet, "http://"+inst.Addr()+"/", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// probeHandler asks an in-process handler for GET / (which answers at once from the
// instance's state).
func probeHandler(ctx context.Context, h http.Handler) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "/", nil)
	if err != nil {
		return false
	}
	rec := &statusRecorder{header: http.Header{}}
	h.ServeHTTP(rec, req)
	return rec.status == 0 || rec.status == http.StatusOK
}

// statusRecorder is the ResponseWriter of an in-process probe: it keeps the status.
type statusRecorder struct {
	header http.Header
	status int
}

func (r *statusRecorder) Header() http.Header { return r.header }

func (r *statusRecorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return len(b), nil
}

func (f *Fleet) setProbeState(ctx context.Context, m *member, state instance.State, msg string) {
	m.setState(state)
	f.note(m, msg)
	f.cfg.Changed(ctx)
}

// note writes a probe event to the instance's deployment log and the server log.
func (f *Fleet) note(m *member, msg string) {
	f.appendLog(m, msg)
	f.log.Warn(msg, "endpoint", m.spec.Endpoint, "deployment", m.spec.Deployment)
}
