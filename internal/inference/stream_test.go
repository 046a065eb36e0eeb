package inference

import (
	"bufio"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// A run() that returns a generator streams its chunks: the first arrives while the
// generator is still running.
func TestGeneratorStreams(t *testing.T) {
	url, _ := serve(t, "stream_score.py", 1)
	start := time.Now()
	resp, err := http.Post(url+"/score", "text/plain", strings.NewReader("3"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain; charset=utf-8" {
		t.Fatalf("status %d, content type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	if err != nil || first != "chunk 0\n" {
		t.Fatalf("first chunk %q, %v", first, err)
	}
	if d := time.Since(start); d > 350*time.Millisecond {
		t.Errorf("the first chunk came after %s: it waited for the whole generator (0.6 s)", d)
	}
	rest, err := io.ReadAll(r)
	if err != nil || string(rest) != "chunk 1\nchunk 2\n" {
		t.Fatalf("the rest %q, %v", rest, err)
	}
	// The worker serves the next request normally.
	if resp, body := post(t, url+"/score", "1"); resp.StatusCode != 200 || body != "chunk 0\n" {
		t.Fatalf("after a stream: %d %q", resp.StatusCode, body)
	}
}

// A generator that raises after its first chunk cuts the connection: the client sees an
// incomplete answer, not a complete-looking one.
func TestGeneratorThatRaisesCutsTheAnswer(t *testing.T) {
	url, log := serve(t, "stream_score.py", 1)
	resp, err := http.Post(url+"/score", "text/plain", strings.NewReader("raise"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the answer %q ended cleanly; want it cut short", body)
	}
	if !strings.HasPrefix(string(body), "partial") {
		t.Errorf("the chunk before the error is lost: %q", body)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(log.String(), "the generator failed") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(log.String(), "the generator failed") {
		t.Errorf("the log does not say why:\n%s", log)
	}
	if resp, body := post(t, url+"/score", "1"); resp.StatusCode != 200 {
		t.Fatalf("after a failed stream: %d %q", resp.StatusCode, body)
	}
}
