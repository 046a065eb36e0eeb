package archive

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestDigestContextStopsWhenCanceled(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "model.bin"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := DigestContext(ctx, dir); !errors.Is(err, context.Canceled) {
		t.Fatalf("DigestContext after cancel: %v, want context.Canceled", err)
	}
	want, err := DigestContext(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := DigestContext(context.Background(), dir); err != nil || got != want {
		t.Fatalf("DigestContext = %s, %v; want %s", got, err, want)
	}
}

func TestExtractStopsAtDeclaredSize(t *testing.T) {
	// A header that claims 1 TiB with no content: refused before a byte is written.
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: "huge", Mode: 0o644, Size: 1 << 40}); err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	err := Limits{MaxBytes: 1 << 20}.Extract(tar.NewReader(&buf), dst)
	var le *LimitError
	if !errors.As(err, &le) || *le != (LimitError{What: "bytes", Limit: 1 << 20, Got: 1 << 40}) {
		t.Fatalf("Extract: %v, want a LimitError of 1 TiB against 1 MiB", err)
	}
	if _, err := os.Stat(filepath.Join(dst, "huge")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the refused entry was created: %v", err)
	}
}
