package artifacts

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthml/berth/internal/artifacts/archive"
)

func TestRoundTripAndDedupe(t *testing.T) {
	src := t.TempDir()
	files := map[string]string{"model/a.pkl": "\x00\x01binary", "model/sub/b.txt": "hello", "score.py": "def run(x): return x"}
	for name, content := range files {
		p := filepath.Join(src, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(content), 0o644)
	}
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := archive.WriteTar(&buf, src); err != nil {
		t.Fatal(err)
	}
	want, _ := archive.DigestContext(t.Context(), src)
	digest, size, err := s.Put(bytes.NewReader(buf.Bytes()))
	if err != nil || digest != want || size != int64(buf.Len()) {
		t.Fatalf("Put = %s %d %v; want digest %s", digest, size, err, want)
	}
	again, _, err := s.Put(bytes.NewReader(buf.Bytes()))
	if err != nil || again != digest {
		t.Fatalf("second Put = %s %v", again, err)
	}
	dst := t.TempDir()
	n, _, err := s.CopyTo(digest, dst)
	if err != nil || n != 3 {
		t.Fatalf("CopyTo: %d files, %v", n, err)
	}
	for name, content := range files {
		got, err := os.ReadFile(filepath.Join(dst, name))
		if err != nil || string(got) != content {
			t.Fatalf("%s: %q %v", name, got, err)
		}
	}
	if !s.Has(digest) || s.Has("sha256:"+string(bytes.Repeat([]byte("0"), 64))) {
		t.Fatal("Has is wrong")
	}
}

func TestRejectsEscapingEntries(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "../evil", Mode: 0o644, Size: 1, Typeflag: tar.TypeReg})
	tw.Write([]byte("x"))
	tw.Close()
	s, _ := Open(t.TempDir())
	if _, _, err := s.Put(&buf); err == nil {
		t.Fatal("a ../ entry was accepted")
	}
}
