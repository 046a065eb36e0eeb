//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// run releases the slots on time (or, closed loop, sends back to back until the
// duration is over) and serves the connections until every request sent is answered.
func (e *engine) run(ctx context.Context) error {
	events := make([]unix.EpollEvent, len(e.conns)+1)
	end := e.start.Add(e.cfg.duration)
	armed := -1 // the slot the timer is set for
	for {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("interrupted: %w", err)
		}
		now := time.Now()
		if err := e.expire(now); err != nil {
			return err
		}
		var err error
		if e.cfg.closed {
			err = e.sendBackToBack(now, end)
			if !now.Before(end) && e.inflight == 0 {
				return err
			}
		} else {
			err = e.release(now)
			if e.next == e.slots && len(e.backlog) == 0 && e.inflight == 0 {
				return err
			}
		}
		if err != nil {
			return err
		}
		// The timer is set for the next slot only while a connection is idle to send it:
		// with all of them busy, slots are released as answers free connections, and a
		// loaded generator stops waking once per slot. It fires only for a slot that is
		// then released, so it is set again or turned off, which clears its readiness.
		if want := e.wantTimer(); !e.cfg.closed && armed != want {
			if err := e.arm(want); err != nil {
				return err
			}
			armed = want
		}
		if err := e.poll(events, 10*time.Millisecond); err != nil {
			return err
		}
	}
}

// release queues every slot due by now, then sends the queued ones, oldest first, on
// the idle connections.
func (e *engine) release(now time.Time) error {
	for ; e.next < e.slots; e.next++ {
		at := e.slot(e.next)
		if at.After(now) {
			break
		}
		e.backlog = append(e.backlog, at)
	}
	for len(e.backlog) > 0 && len(e.idle) > 0 {
		at := e.backlog[0]
		e.backlog = e.backlog[1:]
		if err := e.send(at); err != nil {
			return err
		}
	}
	return nil
}

// sendBackToBack sends a request on every idle connection until end; each latency runs
// from its own send.
func (e *engine) sendBackToBack(now, end time.Time) error {
	for now.Before(end) && len(e.idle) > 0 {
		if err := e.send(time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// slot is the time slot i of the schedule is due.
func (e *engine) slot(i int) time.Time { return e.start.Add(time.Duration(i) * e.interval) }

// wantTimer is the slot the timer should wait for: the next one, or -1 (off) when no
// connection is idle or no slot is left.
func (e *engine) wantTimer() int {
	if len(e.idle) == 0 || e.next == e.slots {
		return -1
	}
	return e.next
}

// arm sets the timer for slot i, or turns it off for i < 0.
func (e *engine) arm(i int) error {
	var spec unix.ItimerSpec
	if i >= 0 {
		spec.Value = unix.NsecToTimespec(max(int64(time.Until(e.slot(i))), 1))
	}
	if err := unix.TimerfdSettime(e.timer, 0, &spec, nil); err != nil {
		return fmt.Errorf("timerfd_settime: %w", err)
	}
	return nil
}

// poll waits up to wait for a connection to be readable or writable, or for the timer,
// and serves what is ready.
func (e *engine) poll(events []unix.EpollEvent, wait time.Duration) error {
	n, err := unix.EpollWait(e.epfd, events, int(wait.Milliseconds()))
	if errors.Is(err, unix.EINTR) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("epoll_wait: %w", err)
	}
	for _, ev := range events[:n] {
		c := e.conns[int(ev.Fd)]
		if c == nil { // the timer: the loop releases its slot
			continue
		}
		if c.connecting {
			if err := e.connected(c); err != nil {
				return err
			}
			continue
		}
		if ev.Events&unix.EPOLLOUT != 0 && c.pending != nil {
			if err := e.write(c, c.pending); err != nil {
				return err
			}
			if e.conns[c.fd] != c { // it failed and was replaced, perhaps by the same fd number
				continue
			}
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			if err := e.receive(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// send writes the request on an idle connection; due is the time its latency runs from
// (zero: from now).
func (e *engine) send(due time.Time) error {
	c := e.idle[0]
	e.idle = e.idle[1:]
	c.busy, c.due, c.sent, c.in = true, due, time.Now(), c.in[:0]
	if due.IsZero() {
		c.due = c.sent
	}
	e.inflight++
	return e.write(c, e.req)
}

// write writes b, or as much of it as the socket takes: the rest waits for EPOLLOUT.
func (e *engine) write(c *conn, b []byte) error {
	n, err := unix.Write(c.fd, b)
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		n = 0
	case err != nil:
		return e.fail(c)
	}
	if n < len(b) {
		wasPending := c.pending != nil
		c.pending = b[n:]
		if !wasPending {
			return e.watch(c.fd, unix.EPOLLIN|unix.EPOLLOUT, unix.EPOLL_CTL_MOD)
		}
		return nil
	}
	if c.pending != nil {
		c.pending = nil
		return e.watch(c.fd, unix.EPOLLIN, unix.EPOLL_CTL_MOD)
	}
	return nil
}

// receive reads what the connection has; once its answer is whole it records the
// latency (a non-2xx answer is an error) and the connection is idle again.
func (e *engine) receive(c *conn) error {
	if cap(c.in)-len(c.in) < 4096 {
		c.in = slices.Grow(c.in, cap(c.in))
	}
	free := c.in[len(c.in):cap(c.in)]
	n, err := unix.Read(c.fd, free)
	switch {
	case errors.Is(err, unix.EAGAIN), errors.Is(err, unix.EINTR):
		return nil
	case err != nil || n == 0 || !c.busy: // a reset, the server closed, or bytes nobody asked for
		return e.fail(c)
	}
	c.in = c.in[:len(c.in)+n]
	r, err := parseResponse(c.in)
	if err != nil {
		return fmt.Errorf("answer from %s: %w", e.cfg.url, err)
	}
	if r.size == 0 {
		return nil // more to come: epoll reports the socket again
	}
	now := time.Now()
	e.last, c.busy = now, false
	e.inflight--
	if r.status >= 200 && r.status < 300 {
		e.lat = append(e.lat, now.Sub(c.due))
	} else {
		e.errors++
	}
	if r.closes || r.size != len(c.in) || c.pending != nil { // answered before it was all sent
		return e.redial(c)
	}
	e.idle = append(e.idle, c)
	return nil
}

// expire fails every request unanswered for longer than the timeout.
func (e *engine) expire(now time.Time) error {
	for _, c := range e.conns {
		if c.busy && now.Sub(c.sent) > e.cfg.timeout {
			if err := e.fail(c); err != nil {
				return err
			}
		}
	}
	return nil
}

// fail counts the connection's request in flight, if any, as an error and replaces the
// connection with a new one: the server is still expected to answer on others.
func (e *engine) fail(c *conn) error {
	if c.busy {
		c.busy = false
		e.inflight--
		e.errors++
		e.last = time.Now()
	}
	return e.redial(c)
}

// redial closes the connection and opens a new one in its place; only a failure to
// connect at all ends the run.
func (e *engine) redial(c *conn) error {
	unix.Close(c.fd)
	delete(e.conns, c.fd)
	e.idle = slices.DeleteFunc(e.idle, func(x *conn) bool { return x == c })
	return e.dial()
}
