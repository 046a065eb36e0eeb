package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"
)

// config is one run's settings.
type config struct {
	url      string
	rate     float64
	closed   bool // send back to back, no schedule (-rate max)
	duration time.Duration
	conns    int
	body     []byte
	key      string
	timeout  time.Duration
}

// summary is what a run measured.
type summary struct {
	target   float64
	achieved float64
	p50, p99 time.Duration
	ok       int
	errors   int
}

// String renders the summary as the one line run.sh parses.
func (s summary) String() string {
	return fmt.Sprintf("target_rps=%.0f rps=%.1f p50_us=%d p99_us=%d ok=%d errors=%d",
		s.target, s.achieved, s.p50.Microseconds(), s.p99.Microseconds(), s.ok, s.errors)
}

// sender is one connection's worth of load: it takes the next due time from the
// pacer (or, closed loop, sends at once), sends, and records the latency from that time.
type sender struct {
	cfg       config
	client    *http.Client
	due       <-chan time.Time // the pacer's slots; nil in a closed loop
	start     time.Time
	latencies []time.Duration
	errors    int
	last      time.Time // when this sender's last answer arrived
}

// generate runs the schedule with cfg.conns senders and summarises what they saw.
func generate(ctx context.Context, cfg config) (summary, error) {
	transport := &http.Transport{
		MaxIdleConns:        cfg.conns,
		MaxIdleConnsPerHost: cfg.conns,
		MaxConnsPerHost:     cfg.conns,
		DisableCompression:  true,
		IdleConnTimeout:     time.Minute,
	}
	defer transport.CloseIdleConnections()
	client := &http.Client{Transport: transport, Timeout: cfg.timeout}
	if err := warm(ctx, cfg, client); err != nil {
		return summary{}, err
	}
	// A short lead gives every sender time to start before the first slot is due.
	start := time.Now().Add(10 * time.Millisecond)
	var due chan time.Time
	if !cfg.closed {
		slots := int(cfg.rate * cfg.duration.Seconds())
		due = make(chan time.Time, slots) // the pacer never waits for a sender
		go pace(ctx, start, time.Duration(float64(time.Second)/cfg.rate), slots, due)
	}
	senders := make([]*sender, cfg.conns)
	var wg sync.WaitGroup
	for i := range senders {
		s := &sender{cfg: cfg, client: client, due: due, start: start}
		senders[i] = s
		wg.Go(func() { s.loop(ctx) })
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return summary{}, fmt.Errorf("interrupted: %w", err)
	}
	return summarise(cfg.rate, start, senders), nil
}

// warm opens every connection with one unmeasured request each, so connection setup
// is not charged to the first measured requests.
func warm(ctx context.Context, cfg config, client *http.Client) error {
	errs := make([]error, cfg.conns)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = send(ctx, cfg, client) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return fmt.Errorf("warm-up request: %w", err)
		}
	}
	return nil
}

// loop sends one request per slot until the schedule (or, closed loop, the duration)
// is over or ctx ends.
func (s *sender) loop(ctx context.Context) {
	for {
		var due time.Time
		if s.due == nil {
			if due = time.Now(); due.Sub(s.start) >= s.cfg.duration {
				return
			}
		} else {
			var ok bool
			select {
			case <-ctx.Done():
				return
			case due, ok = <-s.due:
				if !ok {
					return
				}
			}
		}
		ok, err := send(ctx, s.cfg, s.client)
		s.last = time.Now()
		if err != nil || !ok {
			s.errors++
			continue
		}
		s.latencies = append(s.latencies, s.last.Sub(due))
	}
}

// pace releases slots due at start, start+interval, ... into due, each at its time,
// then closes due. Each slot is charged from its own time, so a late pacer would charge
// its lateness to the server: it sleeps on a thread of its own (pacerThread).
func pace(ctx context.Context, start time.Time, interval time.Duration, slots int, due chan<- time.Time) {
	defer close(due)
	defer pacerThread()()
	for i := range slots {
		at := start.Add(time.Duration(i) * interval)
		sleepUntil(at)
		if ctx.Err() != nil {
			return
		}
		due <- at
	}
}

// send POSTs the body and reads the whole answer; ok is false for a non-2xx status.
func send(ctx context.Context, cfg config, client *http.Client) (ok bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, cfg.url, bytes.NewReader(cfg.body))
	if err != nil {
		return false, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.key != "" {
		req.Header.Set("Authorization", "Bearer "+cfg.key)
	}
	resp, err := client.Do(req)
	if err != nil {
		return false, fmt.Errorf("post: %w", err)
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return false, fmt.Errorf("read answer: %w", err)
	}
	return resp.StatusCode >= 200 && resp.StatusCode < 300, nil
}

// summarise merges the senders' latencies into the achieved rate and percentiles.
func summarise(target float64, start time.Time, senders []*sender) summary {
	sum := summary{target: target}
	var all []time.Duration
	var end time.Time
	for _, s := range senders {
		all = append(all, s.latencies...)
		sum.errors += s.errors
		if s.last.After(end) {
			end = s.last
		}
	}
	sum.ok = len(all)
	if elapsed := end.Sub(start); elapsed > 0 {
		sum.achieved = float64(sum.ok+sum.errors) / elapsed.Seconds()
	}
	slices.Sort(all)
	sum.p50 = percentile(all, 0.50)
	sum.p99 = percentile(all, 0.99)
	return sum
}

// percentile is the nearest-rank percentile p (0 < p ≤ 1) of sorted; 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(0, min(rank, len(sorted)-1))]
}
