//go:build linux

package soak

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

// overloadSlack is the absolute slack of the latency assertion: scheduling noise on a
// shared 2-core machine running twenty clients, the server and two workers.
const overloadSlack = 100 * time.Millisecond

// serviceTime is how long the overload test's run() sleeps.
const serviceTime = 50 * time.Millisecond

func TestSoakOverload(t *testing.T) {
	// --endpoint-rps 0: the admission limit, not the endpoint's rate limit, answers the
	// overload.
	s := startServer(t, "--endpoint-rps", "0")
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{
		"model/m.txt":   "x",
		"code/score.py": fmt.Sprintf("import time\n\ndef init():\n    pass\n\ndef run(data):\n    time.sleep(%g)\n    return 'ok'\n", serviceTime.Seconds()),
		"slow.yml": "name: slow\nendpoint_name: overload\nmodel: {path: ./model}\ncode_configuration: {code: ./code, scoring_script: score.py}\n" +
			"instance_count: 2\nenvironment_variables: {WORKER_COUNT: '1'}\nrequest_settings: {max_concurrent_requests_per_instance: 1}\n",
	})
	const perInstance, instances = 1, 2
	s.ok("online-endpoint", "create", "-n", "overload")
	s.ok("online-deployment", "create", "-f", filepath.Join(dir, "slow.yml"), "--all-traffic")
	key, _ := s.keys("overload")
	url := s.URL() + "/endpoints/overload/score"

	windows := 3
	unloadedWin, loadedWin := pick(2*time.Second, 10*time.Second), pick(3*time.Second, 20*time.Second)
	clients := perInstance * instances * 10

	one := newLoad(url, key, "{}", 1, 30*time.Second)
	many := newLoad(url, key, "{}", clients, 30*time.Second)
	measure := func(l *load, n int, win time.Duration) ([]time.Duration, []outcome) {
		var p99s []time.Duration
		var all []outcome
		for w := 0; w < windows; w++ {
			stop := make(chan struct{})
			time.AfterFunc(win, func() { close(stop) })
			l.run(n, stop, 0, 20*time.Millisecond)
			got := l.taken()
			p99s = append(p99s, p99(got, 200))
			all = append(all, got...)
			t.Logf("%d client(s), window %d: %v, p99 of 200s %s", n, w+1, tally(got), p99(got, 200).Round(time.Millisecond))
		}
		return p99s, all
	}
	for i := 0; i < 5; i++ { // warm up: first requests pay imports and connection set-up
		one.do()
	}
	one.taken()
	unloaded, quiet := measure(one, 1, unloadedWin)
	loaded, busy := measure(many, clients, loadedWin)

	outcomes := append(quiet, busy...)
	undocumented := 0
	for _, o := range outcomes {
		if !documented[o.status] {
			undocumented++
			if undocumented <= 5 {
				t.Errorf("non-documented outcome: status %d, error %v", o.status, o.err)
			}
		}
	}
	c := counts(busy)
	if c[429] == 0 || c[200] == 0 {
		t.Errorf("%d clients against a capacity of %d: want both 200s and 429s, got %v", clients, perInstance*instances, c)
	}
	for _, o := range busy {
		if o.status == 429 && o.retryAfter == "" {
			t.Errorf("a 429 without Retry-After (reason %q)", o.reason)
			break
		}
	}
	// The admitted requests keep the deployment busy: at least 60% of its capacity.
	if want := int(0.6 * float64(perInstance*instances) * float64(windows) * loadedWin.Seconds() / serviceTime.Seconds()); c[200] < want {
		t.Errorf("at 10x capacity only %d requests succeeded in %d x %s; the deployment can do %d", c[200], windows, loadedWin, want*10/6)
	}
	u, l := median3(unloaded), median3(loaded)
	bound := 2*u + overloadSlack
	t.Logf("p99 of admitted requests, median of %d windows: unloaded %s, at 10x capacity %s; bound 2 x %s + %s = %s",
		windows, u.Round(time.Millisecond), l.Round(time.Millisecond), u.Round(time.Millisecond), overloadSlack, bound.Round(time.Millisecond))
	if l > bound {
		t.Errorf("admitted requests at 10x capacity: p99 %s is over %s (unloaded p99s %v, loaded p99s %v)", l, bound, unloaded, loaded)
	}

	orphans, leaked := finish(t, s)
	report(t, row{requests: len(outcomes), undocumented: undocumented, orphans: orphans, leaked: leaked})
}
