package logs

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestTail(t *testing.T) {
	dir := t.TempDir()
	big := &strings.Builder{}
	for i := 1; i <= 20000; i++ {
		fmt.Fprintf(big, "line %d\n", i)
	}
	cases := []struct {
		name, content string
		n             int
		want          string
	}{
		{"fewer lines than n", "a\nb\n", 5, "a\nb\n"},
		{"exactly n", "a\nb\nc\n", 3, "a\nb\nc\n"},
		{"last two", "a\nb\nc\n", 2, "b\nc\n"},
		{"no trailing newline", "a\nb\nc", 2, "b\nc"},
		{"all", "a\nb\n", 0, "a\nb\n"},
		{"empty", "", 3, ""},
		{"big file", big.String(), 3, "line 19998\nline 19999\nline 20000\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_"))
			os.WriteFile(p, []byte(tc.content), 0o644)
			got, err := Tail(p, tc.n)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("Tail(%d) = %q, want %q", tc.n, got, tc.want)
			}
		})
	}
	if got, err := Tail(filepath.Join(dir, "missing"), 3); err != nil || len(got) != 0 {
		t.Fatalf("missing file: %q %v", got, err)
	}
}

func TestTimestamped(t *testing.T) {
	var b strings.Builder
	at := time.Date(2026, 11, 23, 5, 6, 7, 890e6, time.UTC)
	w := NewTimestamped(&b, func() time.Time { return at })
	fmt.Fprint(w, "one\ntw")
	fmt.Fprint(w, "o\n")
	want := "2026-11-23 05:06:07,890 one\n2026-11-23 05:06:07,890 two\n"
	if b.String() != want {
		t.Fatalf("got %q want %q", b.String(), want)
	}
}

func TestStampIsTheInferenceServerLayoutInUTC(t *testing.T) {
	at := time.Date(2026, 12, 2, 7, 5, 9, 45_900_000, time.FixedZone("CET", 3600))
	if got, want := Stamp(at), "2026-12-02 06:05:09,045"; got != want {
		t.Errorf("Stamp = %q, want %q", got, want)
	}
	if got, want := string(AppendStamp([]byte("at "), at)), "at 2026-12-02 06:05:09,045"; got != want {
		t.Errorf("AppendStamp = %q, want %q", got, want)
	}
}
