//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// conn is one keep-alive connection and the request it has in flight, if any.
type conn struct {
	fd         int
	busy       bool
	connecting bool      // dialled, not yet connected
	due        time.Time // the in-flight request's scheduled time (its send time in a closed loop)
	sent       time.Time // when it was written, for the timeout
	pending    []byte    // the part of the request the socket has not taken yet
	in         []byte    // the answer read so far
}

// engine runs one load on a single OS thread: non-blocking sockets, one epoll set, and
// a timerfd for the schedule. No goroutine or thread hand-over per request, so the
// generator costs the machine a write, a read and an epoll wait per request, no more.
type engine struct {
	cfg        config
	req        []byte
	addr       unix.Sockaddr
	family     int
	epfd       int
	timer      int // timerfd due at the next slot
	conns      map[int]*conn
	idle       []*conn // oldest first: a server that serves connections in turn gets them in turn
	connecting int
	backlog    []time.Time // due slots that found every connection busy, oldest first
	start      time.Time
	interval   time.Duration
	slots      int // slots in the schedule; 0 in a closed loop
	next       int // the next slot to release
	inflight   int
	lat        []time.Duration
	errors     int
	last       time.Time // when the last answer (or error) came
}

// generate runs the schedule (or, closed loop, back-to-back sends for the duration) over
// cfg.conns connections and summarises what they saw.
func generate(ctx context.Context, cfg config) (summary, error) {
	runtime.LockOSThread() // the engine's epoll and timer stay with one thread
	defer runtime.UnlockOSThread()
	e, err := newEngine(cfg)
	if err != nil {
		return summary{}, err
	}
	defer e.close()
	if err := e.warm(ctx); err != nil {
		return summary{}, err
	}
	e.start = time.Now()
	if !cfg.closed {
		e.start = e.start.Add(time.Millisecond) // the first slot, a little ahead
		e.interval = time.Duration(float64(time.Second) / cfg.rate)
		e.slots = int(cfg.rate * cfg.duration.Seconds())
	}
	e.lat = make([]time.Duration, 0, max(e.slots, 1024))
	if err := e.run(ctx); err != nil {
		return summary{}, err
	}
	return summarise(cfg.rate, e.start, e.last, e.lat, e.errors), nil
}

// newEngine resolves the URL and opens the epoll set, the timer and every connection.
func newEngine(cfg config) (*engine, error) {
	u, err := url.Parse(cfg.url)
	if err != nil || u.Scheme != "http" {
		return nil, fmt.Errorf("%w: -url must be http://host:port/path, got %q", errUsage, cfg.url)
	}
	hostPort := u.Host
	if u.Port() == "" {
		hostPort = net.JoinHostPort(u.Hostname(), "80")
	}
	tcp, err := net.ResolveTCPAddr("tcp", hostPort)
	if err != nil {
		return nil, fmt.Errorf("resolve %s: %w", u.Host, err)
	}
	if tcp.IP == nil { // http://:8080/: this machine, as net.Dial takes it
		tcp.IP = net.IPv4(127, 0, 0, 1)
	}
	e := &engine{cfg: cfg, req: buildRequest(u, cfg.body, cfg.key), conns: map[int]*conn{}, epfd: -1, timer: -1}
	if ip4 := tcp.IP.To4(); ip4 != nil {
		e.addr, e.family = &unix.SockaddrInet4{Port: tcp.Port, Addr: [4]byte(ip4)}, unix.AF_INET
	} else {
		e.addr, e.family = &unix.SockaddrInet6{Port: tcp.Port, Addr: [16]byte(tcp.IP.To16())}, unix.AF_INET6
	}
	if e.epfd, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return nil, fmt.Errorf("epoll: %w", err)
	}
	if e.timer, err = unix.TimerfdCreate(unix.CLOCK_MONOTONIC, unix.TFD_NONBLOCK|unix.TFD_CLOEXEC); err != nil {
		e.close()
		return nil, fmt.Errorf("timerfd: %w", err)
	}
	if err := e.watch(e.timer, unix.EPOLLIN, unix.EPOLL_CTL_ADD); err != nil {
		e.close()
		return nil, err
	}
	for range cfg.conns {
		if err := e.dial(); err != nil {
			e.close()
			return nil, err
		}
	}
	return e, nil
}

// dial starts connecting a new connection without waiting: it joins the idle ones once
// connected (connected), so a slow accept never stalls the other connections.
func (e *engine) dial() error {
	fd, err := unix.Socket(e.family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("socket: %w", err)
	}
	if err := unix.Connect(fd, e.addr); err != nil && !errors.Is(err, unix.EINPROGRESS) {
		unix.Close(fd)
		return fmt.Errorf("connect to %s: %w", e.cfg.url, err)
	}
	if err := e.watch(fd, unix.EPOLLOUT, unix.EPOLL_CTL_ADD); err != nil {
		unix.Close(fd)
		return err
	}
	e.conns[fd] = &conn{fd: fd, connecting: true, in: make([]byte, 0, 4096)}
	e.connecting++
	return nil
}

// connected finishes a connection dial started: it is idle from now on.
func (e *engine) connected(c *conn) error {
	if code, err := unix.GetsockoptInt(c.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || code != 0 {
		if err == nil {
			err = unix.Errno(code)
		}
		return fmt.Errorf("connect to %s: %w", e.cfg.url, err)
	}
	_ = unix.SetsockoptInt(c.fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	c.connecting = false
	e.connecting--
	e.idle = append(e.idle, c)
	return e.watch(c.fd, unix.EPOLLIN, unix.EPOLL_CTL_MOD)
}

// watch adds fd to the epoll set, or changes the events it waits for.
func (e *engine) watch(fd int, events uint32, op int) error {
	if err := unix.EpollCtl(e.epfd, op, fd, &unix.EpollEvent{Events: events, Fd: int32(fd)}); err != nil {
		return fmt.Errorf("epoll_ctl: %w", err)
	}
	return nil
}

// close releases every descriptor the engine holds.
func (e *engine) close() {
	for fd := range e.conns {
		unix.Close(fd)
	}
	for _, fd := range []int{e.timer, e.epfd} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// warm sends one unmeasured request on every connection once all are connected, and
// waits for the answers, so connection setup and first-request costs are not charged to
// the measured requests.
func (e *engine) warm(ctx context.Context) error {
	deadline := time.Now().Add(e.cfg.timeout)
	events := make([]unix.EpollEvent, len(e.conns)+1)
	for sent := false; !sent || e.inflight > 0; {
		if !sent && e.connecting == 0 {
			for len(e.idle) > 0 {
				if err := e.send(time.Now()); err != nil {
					return err
				}
			}
			sent = true
			continue
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("warm-up request: no answer from %s within %s", e.cfg.url, e.cfg.timeout)
		}
		if err := e.poll(events, 10*time.Millisecond); err != nil {
			return fmt.Errorf("warm-up request: %w", err)
		}
	}
	e.lat, e.errors = e.lat[:0], 0
	return nil
}
