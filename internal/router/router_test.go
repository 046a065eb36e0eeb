package router

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthml/berth/internal/router/table"
)

// fakeInstance is a fake scoring server that answers with its name and what it saw.
func fakeInstance(t *testing.T, name string, delay time.Duration) *httptest.Server {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(delay)
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("x-seen-request-id", r.Header.Get("x-request-id"))
		w.Header().Set("x-seen-auth", r.Header.Get("Authorization"))
		fmt.Fprintf(w, "%s %s %s %s", name, r.Method, r.URL.RawQuery, body)
	}))
	t.Cleanup(s.Close)
	return s
}

func addr(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }

func newRouter(t *testing.T, blue, green *httptest.Server, traffic map[string]int) (*Router, *httptest.Server) {
	r := New(Config{EndpointRPS: -1})
	deps := map[string]*table.Deployment{
		"blue":  {Name: "blue", Instances: []*table.Instance{{Addr: addr(blue)}}, RequestTimeout: 300 * time.Millisecond},
		"green": {Name: "green", Instances: []*table.Instance{{Addr: addr(green)}}},
		"empty": {Name: "empty"},
	}
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{
		"ep": {Name: "ep", AuthMode: "key", Keys: []string{"k1", "k2"}, Deployments: deps, Traffic: traffic},
	}})
	front := httptest.NewServer(r)
	t.Cleanup(front.Close)
	return r, front
}

func call(t *testing.T, url, key string, headers ...string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, strings.NewReader(`{"x":1}`))
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestRouting(t *testing.T) {
	blue, green := fakeInstance(t, "blue", 0), fakeInstance(t, "green", 0)
	_, front := newRouter(t, blue, green, map[string]int{"blue": 100, "green": 0})
	url := front.URL + "/endpoints/ep/score"

	resp, body := call(t, url, "k1", "x-request-id", "mine", "x-ms-client-request-id", "a/b c_d-"+strings.Repeat("x", 50))
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "blue POST") || !strings.Contains(body, `{"x":1}`) {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	rid := resp.Header.Get("x-request-id")
	if len(rid) != 36 || rid == "mine" || resp.Header.Get("x-seen-request-id") != rid {
		t.Fatalf("x-request-id %q (instance saw %q)", rid, resp.Header.Get("x-seen-request-id"))
	}
	if got := resp.Header.Get("x-ms-client-request-id"); got != "abc_d-"+strings.Repeat("x", 34) {
		t.Fatalf("client request id %q", got)
	}
	if resp.Header.Get("x-seen-auth") != "" || resp.Header.Get("azureml-model-deployment") != "blue" {
		t.Fatalf("auth forwarded or deployment header missing: %v", resp.Header)
	}
	if resp, _ := call(t, url, "k2", "azureml-model-deployment", "green"); resp.Header.Get("azureml-model-deployment") != "green" {
		t.Fatal("header targeting at 0% did not reach green")
	}
	for _, tc := range []struct {
		url, key string
		headers  []string
		status   int
	}{
		{url, "", nil, 401},
		{url, "wrong", nil, 401},
		{front.URL + "/endpoints/nope/score", "k1", nil, 404},
		{url, "k1", []string{"azureml-model-deployment", "nope"}, 404},
		{url, "k1", []string{"azureml-model-deployment", "empty"}, 503},
		{front.URL + "/endpoints/ep/other", "k1", nil, 404},
	} {
		resp, body := call(t, tc.url, tc.key, tc.headers...)
		if resp.StatusCode != tc.status || !strings.Contains(body, `"error"`) || resp.Header.Get("x-request-id") == "" {
			t.Errorf("%s %v: %d %s, want %d with a JSON error", tc.url, tc.headers, resp.StatusCode, body, tc.status)
		}
	}
	get, _ := http.NewRequest("GET", url+"?a=1&b=2", nil)
	get.Header.Set("Authorization", "Bearer k1")
	resp, err := http.DefaultClient.Do(get)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.HasPrefix(string(b), "blue GET a=1&b=2") {
		t.Fatalf("GET query: %q", b)
	}
}

func TestNoWeightAnd5050(t *testing.T) {
	blue, green := fakeInstance(t, "blue", 0), fakeInstance(t, "green", 0)
	_, front := newRouter(t, blue, green, map[string]int{"blue": 0, "green": 0})
	url := front.URL + "/endpoints/ep/score"
	resp, body := call(t, url, "k1")
	if resp.StatusCode != 404 || !strings.Contains(body, `"NoValidDeployment"`) {
		t.Fatalf("no weight: %d %s, want 404 NoValidDeployment", resp.StatusCode, body)
	}
	// The message is Azure's, then the deployments without traffic and the command; the
	// command names one that has a ready instance ("empty" has none).
	for _, want := range []string{"No valid deployments to route to", "0 traffic: blue, empty, green",
		"berth online-endpoint update -n ep --traffic \\\"blue=100\\\""} {
		if !strings.Contains(body, want) {
			t.Errorf("no weight: body %s lacks %s", body, want)
		}
	}
	_, front2 := newRouter(t, blue, green, map[string]int{"blue": 50, "green": 50})
	counts := map[string]int{}
	for i := 0; i < 400; i++ {
		resp, _ := call(t, front2.URL+"/endpoints/ep/score", "k1")
		counts[resp.Header.Get("azureml-model-deployment")]++
	}
	if counts["blue"] < 140 || counts["blue"] > 260 {
		t.Fatalf("50/50: %v", counts)
	}
}

func TestTimeoutAndDeadInstance(t *testing.T) {
	slow, green := fakeInstance(t, "blue", 2*time.Second), fakeInstance(t, "green", 0)
	_, front := newRouter(t, slow, green, map[string]int{"blue": 100})
	start := time.Now()
	resp, _ := call(t, front.URL+"/endpoints/ep/score", "k1")
	if resp.StatusCode != 408 || time.Since(start) > time.Second {
		t.Fatalf("slow instance: %d after %s, want 408 after ~300ms", resp.StatusCode, time.Since(start))
	}
	dead := fakeInstance(t, "blue", 0)
	dead.Close()
	_, front2 := newRouter(t, dead, green, map[string]int{"blue": 100})
	if resp, _ := call(t, front2.URL+"/endpoints/ep/score", "k1"); resp.StatusCode != 502 {
		t.Fatalf("dead instance: %d, want 502", resp.StatusCode)
	}
}

func TestSwapWhileServing(t *testing.T) {
	blue, green := fakeInstance(t, "blue", 0), fakeInstance(t, "green", 0)
	r, front := newRouter(t, blue, green, map[string]int{"blue": 100})
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Not call(): it calls t.Fatal, which must not run outside the test's goroutine.
			for j := 0; j < 50; j++ {
				req, _ := http.NewRequest("POST", front.URL+"/endpoints/ep/score", strings.NewReader(`{"x":1}`))
				req.Header.Set("Authorization", "Bearer k1")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("score: %v", err)
					return
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					t.Errorf("%d %s", resp.StatusCode, body)
				}
			}
		}()
	}
	for i := 0; i < 50; i++ {
		r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{"ep": {Name: "ep", Keys: []string{"k1"}, Traffic: map[string]int{"green": 100},
			Deployments: map[string]*table.Deployment{"green": {Name: "green", Instances: []*table.Instance{{Addr: addr(green)}}}}}}})
	}
	wg.Wait()
}

// BenchmarkRouterOverhead compares one request through the router with one straight to
// the instance, one at a time, on loopback.
func BenchmarkRouterOverhead(b *testing.B) {
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"ok":true}`))
	}))
	defer backend.Close()
	r := New(Config{EndpointRPS: -1})
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{"ep": {Name: "ep", Keys: []string{"k"}, Traffic: map[string]int{"blue": 100},
		Deployments: map[string]*table.Deployment{"blue": {Name: "blue", MaxConcurrent: 8, Gate: &table.Gate{},
			Instances: []*table.Instance{table.NewInstance(strings.TrimPrefix(backend.URL, "http://"), 8)}}}}}})
	front := httptest.NewServer(r)
	defer front.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 8}}
	run := func(b *testing.B, url string) {
		for i := 0; i < b.N; i++ {
			req, _ := http.NewRequest("POST", url, strings.NewReader(`{"data":[1]}`))
			req.Header.Set("Authorization", "Bearer k")
			resp, err := client.Do(req)
			if err != nil {
				b.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	b.Run("direct", func(b *testing.B) { run(b, backend.URL+"/score") })
	b.Run("router", func(b *testing.B) { run(b, front.URL+"/endpoints/ep/score") })
}

func TestNoValidDeploymentMessage(t *testing.T) {
	const documented = "No valid deployments to route to. Please check that the endpoint has at least one deployment with positive weight values or use a deployment specific header to route."
	ready := []*table.Instance{{Addr: "127.0.0.1:1"}}
	tests := []struct {
		name string
		deps map[string]*table.Deployment
		want string
	}{
		{"no deployments", nil, documented},
		{"one without traffic", map[string]*table.Deployment{"blue": {Name: "blue"}},
			documented + " Endpoint ep has 1 deployment(s) with 0 traffic: blue. Send traffic to one with `berth online-endpoint update -n ep --traffic \"blue=100\"`"},
		{"the ready one is named", map[string]*table.Deployment{"a": {Name: "a"}, "b": {Name: "b", Instances: ready}},
			documented + " Endpoint ep has 2 deployment(s) with 0 traffic: a, b. Send traffic to one with `berth online-endpoint update -n ep --traffic \"b=100\"`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ep := &table.Endpoint{Name: "ep", Deployments: tt.deps, Traffic: map[string]int{"a": 0}}
			if got := noValidDeployment(ep); got != tt.want {
				t.Errorf("message\n%s\nwant\n%s", got, tt.want)
			}
		})
	}
}

// TestStreamedAnswerFromAnInstanceIsRelayedChunkByChunk: an instance behind an address
// (a pod) that streams its answer: the client gets the first chunk while the instance
// still holds the second back.
func TestStreamedAnswerFromAnInstanceIsRelayedChunkByChunk(t *testing.T) {
	got1 := make(chan struct{})
	pod := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte("chunk1\n"))
		w.(http.Flusher).Flush()
		select {
		case <-got1: // the client has read the first chunk
		case <-time.After(5 * time.Second):
		}
		w.Write([]byte("chunk2\n"))
	}))
	t.Cleanup(pod.Close)
	r := New(Config{EndpointRPS: -1})
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{"ep": {Name: "ep", Keys: []string{"k"}, Traffic: map[string]int{"blue": 100},
		Deployments: map[string]*table.Deployment{"blue": {Name: "blue", RequestTimeout: 10 * time.Second,
			Instances: []*table.Instance{{Addr: addr(pod)}}}}}}})
	front := httptest.NewServer(r)
	t.Cleanup(front.Close)
	req, _ := http.NewRequest("POST", front.URL+"/endpoints/ep/score", strings.NewReader(`{}`))
	req.Header.Set("Authorization", "Bearer k")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	line := make([]byte, len("chunk1\n"))
	if _, err := io.ReadFull(resp.Body, line); err != nil || string(line) != "chunk1\n" {
		t.Fatalf("first chunk %q, %v", line, err)
	}
	if waited := time.Since(start); waited > 2*time.Second {
		t.Fatalf("the first chunk came only after %v: the router held it until the answer ended", waited)
	}
	close(got1)
	rest, _ := io.ReadAll(resp.Body)
	if string(rest) != "chunk2\n" {
		t.Fatalf("rest %q", rest)
	}
}
