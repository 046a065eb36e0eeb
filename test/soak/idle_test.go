//go:build linux

package soak

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"

	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// scoreBound is how long one scoring request may take while thousands of idle
// connections are open.
const scoreBound = time.Second

// idleConn is a keep-alive connection that has sent one request and then sits idle.
type idleConn struct {
	c net.Conn
	r *bufio.Reader
}

// openIdle opens n connections to addr from 8 goroutines; each sends GET / and reads
// the answer, so the server holds it as an idle keep-alive connection.
func openIdle(addr string, n int) ([]*idleConn, error) {
	conns := make([]*idleConn, n)
	var next atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := int(next.Add(1)) - 1; i < n; i = int(next.Add(1)) - 1 {
				ic, err := dialIdle(addr)
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					return
				}
				conns[i] = ic
			}
		}()
	}
	wg.Wait()
	var open []*idleConn
	for _, c := range conns {
		if c != nil {
			open = append(open, c)
		}
	}
	return open, firstErr
}

func dialIdle(addr string) (*idleConn, error) {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: soak\r\n\r\n")); err != nil {
		c.Close()
		return nil, err
	}
	r := bufio.NewReader(c)
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		c.Close()
		return nil, err
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	c.SetDeadline(time.Time{})
	if err != nil || resp.StatusCode != 200 {
		c.Close()
		return nil, errors.Join(err, errors.New(resp.Status))
	}
	return &idleConn{c: c, r: r}, nil
}

// stillOpen counts the connections the server has not closed: a read that times out
// finds an open connection, EOF or a reset a closed one.
func stillOpen(conns []*idleConn) int {
	var open atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := g; i < len(conns); i += 16 {
				c := conns[i]
				c.c.SetReadDeadline(time.Now().Add(time.Millisecond))
				_, err := c.r.ReadByte()
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					open.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	return int(open.Load())
}

func TestSoakIdleFlood(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	// This process holds 1.5 n connections at the end, the server (which raises its
	// limit to the same hard limit and uses at most half of it) n + n/4.
	n := min(pick(3000, 8000), int(lim.Cur-1000)*2/3, int(lim.Max/2)*4/5)
	if n < 500 {
		t.Skipf("RLIMIT_NOFILE %d/%d leaves room for too few connections", lim.Cur, lim.Max)
	}
	maxConns := n + n/4
	t.Logf("RLIMIT_NOFILE %d (hard %d): %d idle connections, then %d more; berth serve --max-connections %d", lim.Cur, lim.Max, n, n/2, maxConns)
	s := startServer(t, "--max-connections", itoa(maxConns))
	s.ok("online-endpoint", "create", "-f", example("quickstart", "endpoint.yml"))
	s.ok("online-deployment", "create", "-f", example("quickstart", "blue-deployment.yml"), "--all-traffic")
	key, _ := s.keys("quickstart")
	// A new connection for every request: each must find a place among the idle ones.
	l := newLoad(s.URL()+"/endpoints/quickstart/score", key, sample, 1, 10*time.Second)
	l.client.Transport.(*http.Transport).DisableKeepAlives = true

	var all []*idleConn
	t.Cleanup(func() {
		for _, c := range all {
			c.c.Close()
		}
	})
	// For hold, one scoring request every 50 ms on a new connection.
	hold := pick(2*time.Second, 30*time.Second)
	scoreWhileHeld := func(phase string) {
		t.Helper()
		var worst time.Duration
		for end := time.Now().Add(hold); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
			o := l.do()
			worst = max(worst, o.latency())
			if o.status != 200 || o.latency() > scoreBound {
				t.Errorf("%s: scoring answered %d (%v) in %s; want 200 within %s", phase, o.status, o.err, o.latency(), scoreBound)
			}
		}
		t.Logf("%s: %d idle connections opened, held for %s; scoring answered within %s", phase, len(all), hold, worst.Round(time.Microsecond))
	}

	start := time.Now()
	conns, err := openIdle(s.addr, n)
	all = append(all, conns...)
	if err != nil || len(conns) != n {
		t.Fatalf("opened %d of %d idle connections: %v", len(conns), n, err)
	}
	t.Logf("%d idle keep-alive connections open in %s", n, time.Since(start).Round(time.Millisecond))
	scoreWhileHeld("under the cap")
	if open := stillOpen(conns); open != n {
		t.Errorf("under the cap the server closed %d of %d idle connections", n-open, n)
	}

	// Over the cap: the server closes the longest-idle connections for new ones, and
	// new clients still get in.
	more, err := openIdle(s.addr, n/2)
	all = append(all, more...)
	if err != nil || len(more) != n/2 {
		t.Fatalf("over the cap, opened %d of %d more connections: %v", len(more), n/2, err)
	}
	scoreWhileHeld("over the cap")
	openOld, openNew := stillOpen(conns), stillOpen(more)
	t.Logf("over the cap: %d of the first %d and %d of the %d later connections still open", openOld, n, openNew, n/2)
	if openOld+openNew > maxConns {
		t.Errorf("%d connections open, over --max-connections %d", openOld+openNew, maxConns)
	}
	if openNew < n/2-int(hold/(50*time.Millisecond)) {
		// Each scoring connection may have taken the place of one idle connection,
		// the newest when no older is left.
		t.Errorf("the server closed %d of the newest connections instead of the longest idle", n/2-openNew)
	}

	outcomes := l.taken()
	undocumented := 0
	for _, o := range outcomes {
		if !documented[o.status] {
			undocumented++
		}
	}
	for _, c := range all {
		c.c.Close()
	}
	all = nil
	orphans, leaked := finish(t, s)
	report(t, row{requests: len(outcomes) + n + n/2, undocumented: undocumented, orphans: orphans, leaked: leaked})

}
