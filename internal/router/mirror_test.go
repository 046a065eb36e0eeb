package router

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/berthml/berth/internal/router/table"
)

// A mirrored copy to a stuck deployment must not hold Close for its whole request
// timeout: Close cancels it.
func TestCloseCancelsMirrors(t *testing.T) {
	live := fakeInstance(t, "blue", 0)
	arrived := make(chan struct{}, 1)
	stuck := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		io.Copy(io.Discard, r.Body) // the server notices a closed connection only after the body
		<-r.Context().Done()        // answers only when the caller gives up
	}))
	t.Cleanup(stuck.Close)
	r := New(Config{EndpointRPS: -1})
	r.Swap(&table.Table{Endpoints: map[string]*table.Endpoint{
		"ep": {Name: "ep", AuthMode: "key", Keys: []string{"k1"}, Traffic: map[string]int{"blue": 100}, Mirror: map[string]int{"green": 50},
			Deployments: map[string]*table.Deployment{
				"blue":  {Name: "blue", Instances: []*table.Instance{{Addr: addr(live)}}, RequestTimeout: time.Minute},
				"green": {Name: "green", Instances: []*table.Instance{{Addr: addr(stuck)}}, RequestTimeout: 3 * time.Minute},
			}},
	}})
	front := httptest.NewServer(r)
	t.Cleanup(front.Close)
	deadline := time.Now().Add(10 * time.Second)
	for mirrored := false; !mirrored; {
		if time.Now().After(deadline) {
			t.Fatal("no request was mirrored to green")
		}
		if resp, body := call(t, front.URL+"/endpoints/ep/score", "k1"); resp.StatusCode != 200 {
			t.Fatalf("live request: %d %s", resp.StatusCode, body)
		}
		select {
		case <-arrived:
			mirrored = true
		default:
		}
	}
	closed := make(chan struct{})
	go func() {
		r.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("Close still waits for a stuck mirror after 5 s; it should cancel it")
	}
}
