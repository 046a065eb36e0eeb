package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/router/table"
)

// localInstance is an in-process instance whose handler answers as the inference
// handler does: the body read back, a model error marked as coming from run(), a
// request that blocks until its context ends.
func localInstance() *table.Instance {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("x-seen-request-id", r.Header.Get("x-request-id"))
		w.Header().Set("x-seen-auth", r.Header.Get("Authorization"))
		w.Header().Set("x-ms-run-function-failed", "False")
		switch string(body) {
		case "model-error":
			w.Header().Set(instance.HeaderFromRun, "true")
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error": "bad input"}`)
		case "hang":
			<-r.Context().Done()
			w.WriteHeader(http.StatusGatewayTimeout)
		default:
			w.Header().Set(instance.HeaderFromRun, "true")
			io.WriteString(w, r.URL.Path+" "+string(body))
		}
	})
	inst := table.NewInstance("", 4)
	inst.Handler = h
	return inst
}

func localRouter(t *testing.T, maxBody int64) *httptest.Server {
	r := New(Config{EndpointRPS: -1, MaxBodyBytes: maxBody})
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{
		"ep": {Name: "ep", AuthMode: "key", Keys: []string{"k1"}, Traffic: map[string]int{"blue": 100},
			Deployments: map[string]*table.Deployment{
				"blue": {Name: "blue", Instances: []*table.Instance{localInstance()}, RequestTimeout: 300 * time.Millisecond, MaxConcurrent: 4, Gate: &table.Gate{}},
			}},
	}})
	front := httptest.NewServer(r)
	t.Cleanup(front.Close)
	t.Cleanup(r.Close)
	return front
}

func postLocal(t *testing.T, url, body string, chunked bool) (*http.Response, string) {
	t.Helper()
	var rd io.Reader = strings.NewReader(body)
	if chunked {
		rd = io.MultiReader(rd) // hides the length: sent chunked
	}
	req, _ := http.NewRequest("POST", url, rd)
	req.Header.Set("Authorization", "Bearer k1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func TestLocalInstance(t *testing.T) {
	front := localRouter(t, 64)
	url := front.URL + "/endpoints/ep/score"

	resp, body := postLocal(t, url, "hello", false)
	if resp.StatusCode != 200 || body != "/score hello" {
		t.Fatalf("plain request: %d %q", resp.StatusCode, body)
	}
	if resp.Header.Get("x-seen-request-id") != resp.Header.Get("x-request-id") || resp.Header.Get("x-seen-auth") != "" {
		t.Errorf("the instance must see the router's request id and no key: %v", resp.Header)
	}
	if resp.Header.Get(instance.HeaderFromRun) != "" {
		t.Errorf("the internal marker reached the client: %v", resp.Header)
	}

	resp, body = postLocal(t, url, "model-error", false)
	if resp.StatusCode != http.StatusFailedDependency || resp.Header.Get(instance.HeaderErrorStatus) != "400" ||
		resp.Header.Get(instance.HeaderErrorReason) != "model_error" || !strings.Contains(body, "bad input") {
		t.Fatalf("model error: %d %v %q, want 424 with the model's 400", resp.StatusCode, resp.Header, body)
	}

	start := time.Now()
	resp, body = postLocal(t, url, "hang", false)
	if resp.StatusCode != http.StatusRequestTimeout || !strings.Contains(body, "request_timeout_ms") || time.Since(start) > 5*time.Second {
		t.Fatalf("hung request: %d %q after %s, want 408 after the 300 ms timeout", resp.StatusCode, body, time.Since(start))
	}
	if resp.Header.Get("x-ms-run-function-failed") != "" {
		t.Errorf("the replaced answer kept the instance's headers: %v", resp.Header)
	}

	resp, body = postLocal(t, url, strings.Repeat("x", 100), true)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("a chunked body over the limit: %d %q, want 413", resp.StatusCode, body)
	}
}
