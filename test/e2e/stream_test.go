//go:build unix

package e2e

import (
	"bufio"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A score.py whose run() returns a generator streams through the router: the first
// chunk reaches the client while the generator is still running.
func TestGeneratorStreamsThroughTheRouter(t *testing.T) {
	s := startServer(t, "")
	script, err := os.ReadFile(filepath.Join("..", "..", "internal", "inference", "testdata", "stream_score.py"))
	if err != nil {
		t.Fatal(err)
	}
	deployScript(t, s, "stream", string(script), "", "--all-traffic")
	key, _ := s.keys("dataplane")
	req, _ := http.NewRequest(http.MethodPost, s.URL+"/endpoints/dataplane/score", strings.NewReader("3"))
	req.Header.Set("Authorization", "Bearer "+key)
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	r := bufio.NewReader(resp.Body)
	first, err := r.ReadString('\n')
	if resp.StatusCode != 200 || err != nil || first != "chunk 0\n" {
		t.Fatalf("first chunk: %d %q %v", resp.StatusCode, first, err)
	}
	if d := time.Since(start); d > 450*time.Millisecond {
		t.Errorf("the first chunk came after %s: the router or the instance buffered the stream", d)
	}
	if rest, err := io.ReadAll(r); err != nil || string(rest) != "chunk 1\nchunk 2\n" {
		t.Fatalf("the rest: %q %v", rest, err)
	}
}
