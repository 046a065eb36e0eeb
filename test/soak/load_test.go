//go:build linux

package soak

import (
	"errors"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// documented are the statuses a scoring client may get from a healthy, faulty or
// overloaded server: success, timeout, model error, admission, worker death, no ready
// instance.
var documented = map[int]bool{200: true, 408: true, 424: true, 429: true, 502: true, 503: true}

// outcome is one scoring request as the client saw it.
type outcome struct {
	start, end time.Time
	status     int    // 0 when the request got no answer
	err        error  // the transport error when status is 0
	retryAfter string // the Retry-After header
	reason     string // ms-azureml-model-error-reason, which names the cause of a 429 or 502
	requestID  string // x-request-id, to find the request in the server's log
}

func (o outcome) latency() time.Duration { return o.end.Sub(o.start) }

// connError reports whether err is a refused, reset or cut connection: what a client
// sees while the server is down or dies under it.
func connError(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}

// load sends scoring requests and records every outcome.
type load struct {
	url, key, body string
	client         *http.Client

	mu       sync.Mutex
	outcomes []outcome
}

// newLoad scores url with key; each request may take up to timeout, answer included.
func newLoad(url, key, body string, clients int, timeout time.Duration) *load {
	tr := &http.Transport{MaxIdleConnsPerHost: clients, MaxConnsPerHost: clients, DisableCompression: true}
	return &load{url: url, key: key, body: body, client: &http.Client{Transport: tr, Timeout: timeout}}
}

// do sends one request and records its outcome.
func (l *load) do() outcome {
	req, _ := http.NewRequest(http.MethodPost, l.url, strings.NewReader(l.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+l.key)
	o := outcome{start: time.Now()}
	resp, err := l.client.Do(req)
	if err == nil {
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		o.status, o.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
		o.reason, o.requestID = resp.Header.Get("ms-azureml-model-error-reason"), resp.Header.Get("x-request-id")
	}
	o.end, o.err = time.Now(), err
	if err != nil {
		o.status = 0
	}
	l.mu.Lock()
	l.outcomes = append(l.outcomes, o)
	l.mu.Unlock()
	return o
}

// run sends requests from n goroutines until stop is closed; each goroutine waits
// think after every answer, and pause after a 429 (a client that backs off a little,
// not the full Retry-After) or a transport error. It returns once every goroutine has
// ended.
func (l *load) run(n int, stop <-chan struct{}, think, pause time.Duration) {
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if o := l.do(); o.status == 429 || o.status == 0 {
					time.Sleep(pause)
				} else if think > 0 {
					time.Sleep(think)
				}
			}
		}()
	}
	wg.Wait()
}

// taken returns the outcomes recorded so far and forgets them.
func (l *load) taken() []outcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := l.outcomes
	l.outcomes = nil
	return out
}

// counts tallies outcomes by status (0: no answer).
func counts(os []outcome) map[int]int {
	m := map[int]int{}
	for _, o := range os {
		m[o.status]++
	}
	return m
}

// tally is counts keyed by status, and by reason for the statuses that carry one.
func tally(os []outcome) map[string]int {
	m := map[string]int{}
	for _, o := range os {
		k := strconv.Itoa(o.status)
		if o.reason != "" {
			k += " " + o.reason
		}
		m[k]++
	}
	return m
}

// p99 of the latencies of the outcomes with the given status.
func p99(os []outcome, status int) time.Duration {
	var ls []time.Duration
	for _, o := range os {
		if o.status == status {
			ls = append(ls, o.latency())
		}
	}
	if len(ls) == 0 {
		return 0
	}
	sort.Slice(ls, func(i, j int) bool { return ls[i] < ls[j] })
	return ls[(len(ls)*99+99)/100-1]
}

func median3(a []time.Duration) time.Duration {
	s := append([]time.Duration(nil), a...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
