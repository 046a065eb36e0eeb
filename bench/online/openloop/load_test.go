package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sorted []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 0.5, 0},
		{"one", ms(7), 0.99, 7 * time.Millisecond},
		{"median of four is the second", ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 0.99, 99 * time.Millisecond},
		{"p50 of 1..100", ms(hundred...), 0.50, 50 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sorted, tt.p); got != tt.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

// TestGenerateChargesQueueing: a server slower than the schedule builds a queue, and
// the latency counted from the scheduled time shows it, where a closed loop would
// report only the service time.
func TestGenerateChargesQueueing(t *testing.T) {
	const service = 5 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(service) // the server's service time, not a wait for a condition
	}))
	defer srv.Close()
	// One connection, 400 requests/s for 250 ms: 100 slots, but the server does 200/s,
	// so the last request is due at 250 ms and answered near 500 ms.
	cfg := config{url: srv.URL, rate: 400, duration: 250 * time.Millisecond, conns: 1, timeout: 5 * time.Second}
	sum, err := generate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.ok != 100 || sum.errors != 0 {
		t.Fatalf("ok=%d errors=%d, want 100 and 0", sum.ok, sum.errors)
	}
	if sum.p99 < 20*service {
		t.Errorf("p99 = %v: the queue behind the slow server is not counted (service time %v)", sum.p99, service)
	}
	if sum.achieved > 250 {
		t.Errorf("achieved %.0f requests/s, more than the server can do", sum.achieved)
	}
}

func TestGenerateSendsBodyAndKey(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost || string(body) != `{"data": 1}` || r.Header.Get("Authorization") != "Bearer k1" {
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	cfg := config{url: srv.URL, rate: 200, duration: 100 * time.Millisecond, conns: 2, body: []byte(`{"data": 1}`), timeout: 5 * time.Second}
	for _, tc := range []struct {
		key        string
		ok, errors int
	}{{"k1", 20, 0}, {"wrong", 0, 20}} {
		cfg.key = tc.key
		sum, err := generate(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		if sum.ok != tc.ok || sum.errors != tc.errors {
			t.Errorf("key %q: ok=%d errors=%d, want %d and %d", tc.key, sum.ok, sum.errors, tc.ok, tc.errors)
		}
	}
}

// TestGenerateClosedLoop: -rate max sends back to back for the duration, so the rate it
// reaches is the server's (here 2 connections × 1 / 5 ms = at most 400/s), and each
// latency is the service time.
func TestGenerateClosedLoop(t *testing.T) {
	const service = 5 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(service) // the server's service time
	}))
	defer srv.Close()
	cfg, err := parseFlags([]string{"-url", srv.URL, "-rate", "max", "-duration", "300ms", "-conns", "2"})
	if err != nil || !cfg.closed {
		t.Fatalf("parseFlags: %+v %v", cfg, err)
	}
	sum, err := generate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if sum.errors != 0 || sum.ok < 40 || sum.achieved > 420 {
		t.Fatalf("ok=%d errors=%d achieved=%.0f/s: want about 120 answers at most 400/s", sum.ok, sum.errors, sum.achieved)
	}
	if sum.p50 < service || sum.p50 > 10*service {
		t.Errorf("p50 = %v, want about the service time %v", sum.p50, service)
	}
	if _, err := parseFlags([]string{"-url", srv.URL, "-rate", "fast"}); err == nil {
		t.Error("-rate fast was accepted")
	}
}
