//go:build linux

package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

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
	sum := mustGenerate(t, cfg)
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
		sum := mustGenerate(t, cfg)
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
	sum := mustGenerate(t, cfg)
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

// TestGenerateReadsEveryKindOfAnswer: answers delimited by chunked encoding (a large
// body a Go server streams), answers after which the server closes the connection,
// bodiless answers and answers after an interim 103 are all read whole and counted once,
// and the generator reconnects after a close.
func TestGenerateReadsEveryKindOfAnswer(t *testing.T) {
	big := strings.Repeat("x", 64<<10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/chunked":
			io.WriteString(w, big[:len(big)/2])
			w.(http.Flusher).Flush() // forces chunked encoding
			io.WriteString(w, big[len(big)/2:])
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, "bye")
		case "/empty":
			w.WriteHeader(http.StatusNoContent)
		case "/hints": // an interim answer first: part of the one answer, not another
			w.Header().Set("Link", "</style.css>; rel=preload")
			w.WriteHeader(http.StatusEarlyHints)
			io.WriteString(w, "ok")
		}
	}))
	defer srv.Close()
	for _, path := range []string{"/chunked", "/close", "/empty", "/hints"} {
		cfg := config{url: srv.URL + path, rate: 200, duration: 100 * time.Millisecond, conns: 2, timeout: 5 * time.Second}
		sum, err := generate(context.Background(), cfg)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if sum.ok != 20 || sum.errors != 0 {
			t.Errorf("%s: ok=%d errors=%d, want 20 and 0", path, sum.ok, sum.errors)
		}
	}
}

// TestGenerateCountsTimeouts: a request unanswered within -timeout is an error, and
// the run goes on with a new connection in its place.
func TestGenerateCountsTimeouts(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	var served atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if served.Add(1) == 1 { // the warm-up request
			return
		}
		select { // then: no answer until the test ends
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	cfg := config{url: srv.URL, rate: 50, duration: 100 * time.Millisecond, conns: 1, timeout: 50 * time.Millisecond}
	sum := mustGenerate(t, cfg)
	if sum.ok != 0 || sum.errors != 5 {
		t.Errorf("ok=%d errors=%d, want 0 and 5 (every request timed out)", sum.ok, sum.errors)
	}
}

// TestGenerateRefusesWhatItCannotRead: an answer that is not HTTP/1.1 ends the run
// with an error naming it, instead of a number.
func TestGenerateRefusesWhatItCannotRead(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, buf, _ := w.(http.Hijacker).Hijack()
		defer conn.Close()
		buf.WriteString("SSH-2.0-not-http\r\n\r\n")
		buf.Flush()
	})
	srv.Start()
	defer srv.Close()
	cfg := config{url: srv.URL, rate: 50, duration: 100 * time.Millisecond, conns: 1, timeout: time.Second}
	if _, err := generate(context.Background(), cfg); err == nil || !strings.Contains(err.Error(), "status line") {
		t.Errorf("err = %v, want the bad status line named", err)
	}
}

// TestGenerateNamesARefusedConnection: nothing listening is an error naming the URL.
func TestGenerateNamesARefusedConnection(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // the port is free again: connecting is refused
	cfg := config{url: url, rate: 50, duration: 100 * time.Millisecond, conns: 2, timeout: time.Second}
	_, err := generate(context.Background(), cfg)
	if err == nil || !strings.Contains(err.Error(), "connect to "+url) || !strings.Contains(err.Error(), "refused") {
		t.Errorf("err = %v, want the refused connection to %s named", err, url)
	}
}

// mustGenerate runs the load and fails the test if it could not.
func mustGenerate(t *testing.T, cfg config) summary {
	t.Helper()
	sum, err := generate(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return sum
}
