package supervise

import (
	"strings"
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Second, ResetAfter: time.Minute}
	var got []time.Duration
	for i := 0; i < 5; i++ {
		got = append(got, b.Next(time.Second))
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second, 5 * time.Second}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
	if b.Restarts() != 5 {
		t.Fatalf("restarts %d", b.Restarts())
	}
	if d := b.Next(2 * time.Minute); d != time.Second || b.Restarts() != 1 {
		t.Fatalf("after a long run: %v, %d restarts", d, b.Restarts())
	}
}

func TestTail(t *testing.T) {
	tl := NewTail(2)
	tl.Write([]byte("a\nb\nc"))
	tl.Write([]byte("d\ne\n"))
	if got := strings.Join(tl.Lines(), "|"); got != "cd|e" {
		t.Fatalf("lines %q", got)
	}
}
