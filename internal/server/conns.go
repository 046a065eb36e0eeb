package server

import (
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/berthml/berth/internal/wire"
)

// Connection limits of the one listener. Bodies of control-plane requests must arrive
// within controlBodyTimeout; artifact uploads and scoring bodies (up to
// --max-request-body) have no body deadline, so that large uploads on slow links work.
const (
	readHeaderTimeout  = 10 * time.Second
	idleTimeout        = 120 * time.Second
	maxHeaderBytes     = 1 << 20
	controlBodyTimeout = 60 * time.Second
)

// connLimiter is a listener that holds at most max connections open at once. When a new
// connection would go over the cap, it closes the connection that has been idle (or,
// never having sent a request, silent) the longest, so that idle keep-alive connections
// cannot lock out new clients; only when every connection is busy does Accept wait for
// one to close. Its connState method must be the http.Server's ConnState hook.
type connLimiter struct {
	net.Listener
	max int

	mu     sync.Mutex
	freed  *sync.Cond // signalled when a connection closes or the listener closes
	conns  map[*limitedConn]struct{}
	closed bool
}

func newConnLimiter(ln net.Listener, max int) *connLimiter {
	l := &connLimiter{Listener: ln, max: max, conns: map[*limitedConn]struct{}{}}
	l.freed = sync.NewCond(&l.mu)
	return l
}

// limitedConn is one accepted connection. idleSince (Unix nanoseconds) is 0 while the
// connection is busy; it is atomic so that the per-request ConnState hook takes no lock.
type limitedConn struct {
	net.Conn
	l         *connLimiter
	once      sync.Once
	idleSince atomic.Int64
}

// Close closes the connection and frees its place; it is safe to call more than once.
func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.l.mu.Lock()
		delete(c.l.conns, c)
		c.l.mu.Unlock()
		c.l.freed.Signal()
	})
	return err
}

// Accept waits for a free place, evicting the longest-idle connection when at the cap,
// then accepts the next connection.
func (l *connLimiter) Accept() (net.Conn, error) {
	if err := l.makeRoom(); err != nil {
		return nil, err
	}
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	lc := &limitedConn{Conn: c, l: l}
	l.mu.Lock()
	l.conns[lc] = struct{}{}
	l.mu.Unlock()
	return lc, nil
}

// makeRoom returns once fewer than max connections are open, closing idle ones first.
func (l *connLimiter) makeRoom() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(l.conns) >= l.max {
		if l.closed {
			return net.ErrClosed
		}
		if victim := l.oldestIdle(); victim != nil {
			l.mu.Unlock()
			victim.Close()
			l.mu.Lock()
			continue
		}
		l.freed.Wait()
	}
	return nil
}

// oldestIdle is the open connection idle the longest, or nil when all are busy.
func (l *connLimiter) oldestIdle() *limitedConn {
	var oldest *limitedConn
	var since int64
	for c := range l.conns {
		if t := c.idleSince.Load(); t != 0 && (oldest == nil || t < since) {
			oldest, since = c, t
		}
	}
	// Not chosen twice; a connection that has just turned busy is spared.
	if oldest != nil && !oldest.idleSince.CompareAndSwap(since, 0) {
		return l.oldestIdle()
	}
	return oldest
}

// Close stops accepting and wakes an Accept that waits for a free place.
func (l *connLimiter) Close() error {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
	l.freed.Broadcast()
	return l.Listener.Close()
}

// connState records, from http.Server's ConnState hook, which connections are idle:
// new ones that have not sent a request yet and keep-alive ones between requests.
func (l *connLimiter) connState(c net.Conn, state http.ConnState) {
	// Under TLS the server sees a *tls.Conn around our connection.
	if u, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = u.NetConn()
	}
	lc, ok := c.(*limitedConn)
	if !ok {
		return
	}
	switch state {
	case http.StateNew, http.StateIdle:
		lc.idleSince.Store(time.Now().UnixNano())
	default:
		lc.idleSince.Store(0)
	}
}

// bodyDeadline gives control-plane request bodies d to arrive, except artifact uploads,
// which may be large. Scoring is left to the router.
func bodyDeadline(next http.Handler, d time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || !strings.HasPrefix(r.URL.Path, wire.APIPrefix+"/") ||
			(r.Method == http.MethodPost && r.URL.Path == wire.APIPrefix+"/artifacts") {
			next.ServeHTTP(w, r)
			return
		}
		// net/http lifts the deadline once the body is read (its background read for a
		// client going away starts without one), so a long handler keeps its context.
		// An error means the connection has no deadlines; serve anyway.
		_ = http.NewResponseController(w).SetReadDeadline(time.Now().Add(d))
		next.ServeHTTP(w, r)
	})
}
