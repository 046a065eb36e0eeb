package controller

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"time"

	"github.com/berthml/berth/internal/logs"
	"github.com/berthml/berth/internal/runtime"
	"github.com/berthml/berth/internal/spec"
)

// instNotReady is an instance whose readiness probe failed: alive, out of routing.
const instNotReady = "NotReady"

// probe runs the readiness and liveness probes of a running instance until stop is
// closed: failure_threshold readiness failures in a row take it out of routing and
// success_threshold successes bring it back; failure_threshold liveness failures stop it,
// so its keeper restarts it.
func (c *Controller) probe(ctx context.Context, ir *instanceRun, inst runtime.Instance, d *spec.Deployment, stop <-chan struct{}) {
	rp, lp := d.ReadinessProbe, d.LivenessProbe
	ready := time.NewTicker(time.Duration(max(rp.Period, 1)) * time.Second)
	defer ready.Stop()
	live := time.NewTicker(time.Duration(max(lp.Period, 1)) * time.Second)
	defer live.Stop()
	url := "http://" + inst.Addr() + "/"
	check := func(timeout int) bool {
		cctx, cancel := context.WithTimeout(ctx, time.Duration(max(timeout, 1))*time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(cctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}
	var readyFails, readyOKs, liveFails int
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-ready.C:
			ok := check(rp.Timeout)
			ir.mu.Lock()
			state := ir.state
			ir.mu.Unlock()
			switch {
			case !ok:
				readyFails, readyOKs = readyFails+1, 0
				if readyFails == rp.FailureThreshold && state == instReady {
					c.setProbeState(ctx, ir, instNotReady, fmt.Sprintf("readiness probe failed %d times in a row: instance %d is out of routing until it answers GET / again", readyFails, ir.index))
				}
			default:
				readyOKs, readyFails = readyOKs+1, 0
				if readyOKs >= rp.SuccessThreshold && state == instNotReady {
					c.setProbeState(ctx, ir, instReady, fmt.Sprintf("readiness probe passed %d times: instance %d is back in routing", readyOKs, ir.index))
				}
			}
		case <-live.C:
			if check(lp.Timeout) {
				liveFails = 0
				continue
			}
			liveFails++
			if liveFails >= lp.FailureThreshold {
				c.probeLog(ir, fmt.Sprintf("liveness probe failed %d times in a row: restarting instance %d", liveFails, ir.index))
				inst.Stop(0)
				return
			}
		}
	}
}

func (c *Controller) setProbeState(ctx context.Context, ir *instanceRun, state, msg string) {
	ir.mu.Lock()
	ir.state = state
	ir.mu.Unlock()
	c.probeLog(ir, msg)
	c.publish(ctx)
}

// probeLog appends a line to the instance's storage-initializer (deployment) log.
func (c *Controller) probeLog(ir *instanceRun, msg string) {
	f, err := logs.OpenAppend(filepath.Join(ir.spec.Dir, "logs", "storage-initializer.log"))
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintln(logs.NewTimestamped(f, c.cfg.Now), msg)
	c.log.Warn(msg, "endpoint", ir.spec.Endpoint, "deployment", ir.spec.Deployment)
}
