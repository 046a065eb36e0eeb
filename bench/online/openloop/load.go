package main

import (
	"fmt"
	"math"
	"slices"
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

// summarise turns the latencies of the answered requests, the error count and the time
// of the last answer into the achieved rate and percentiles; it sorts latencies.
func summarise(target float64, start, end time.Time, latencies []time.Duration, errors int) summary {
	sum := summary{target: target, ok: len(latencies), errors: errors}
	if elapsed := end.Sub(start); elapsed > 0 {
		sum.achieved = float64(sum.ok+sum.errors) / elapsed.Seconds()
	}
	slices.Sort(latencies)
	sum.p50 = percentile(latencies, 0.50)
	sum.p99 = percentile(latencies, 0.99)
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
