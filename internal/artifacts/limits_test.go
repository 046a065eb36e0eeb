package artifacts

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthml/berth/internal/artifacts/archive"
)

// gzipTar returns a gzip-compressed tar of the entries (name → size of zeros).
func gzipTar(t *testing.T, entries []string, size int64) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for _, name := range entries {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size}); err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(tw, zeros{}, size); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// leftovers lists what an upload left in the store's tmp and sha256 folders.
func leftovers(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	for _, sub := range []string{"tmp", "sha256"} {
		ents, err := os.ReadDir(filepath.Join(root, sub))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			out = append(out, sub+"/"+e.Name())
		}
	}
	return out
}

func TestPutCapsExpansion(t *testing.T) {
	many := make([]string, 20)
	for i := range many {
		many[i] = fmt.Sprintf("f%02d", i)
	}
	for _, tc := range []struct {
		name    string
		entries []string
		size    int64
		want    archive.LimitError
	}{
		// 8 MiB of zeros gzip to a few KiB: a small bomb against a 1 MiB cap.
		{"bytes", []string{"model.bin"}, 8 << 20, archive.LimitError{What: "bytes", Limit: 1 << 20, Got: 8 << 20}},
		{"bytes over several files", []string{"a", "b", "c"}, 400 << 10, archive.LimitError{What: "bytes", Limit: 1 << 20, Got: 1200 << 10}},
		{"files", many, 0, archive.LimitError{What: "files", Limit: 10, Got: 11}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			s, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			s.MaxBytes, s.MaxFiles = 1<<20, 10
			upload := gzipTar(t, tc.entries, tc.size)
			if len(upload) > 64<<10 {
				t.Fatalf("test upload is %d bytes, want a small gzip", len(upload))
			}
			_, _, err = s.Put(bytes.NewReader(upload))
			var le *archive.LimitError
			if !errors.As(err, &le) || *le != tc.want {
				t.Fatalf("Put: %v, want %+v", err, tc.want)
			}
			if left := leftovers(t, root); len(left) != 0 {
				t.Errorf("a refused upload left %v", left)
			}
		})
	}
}

func TestPutWithinCaps(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s.MaxBytes, s.MaxFiles = 1<<20, 3
	if _, _, err := s.Put(bytes.NewReader(gzipTar(t, []string{"a", "b", "c"}, 1<<20/3))); err != nil {
		t.Fatalf("Put of a tree at the caps: %v", err)
	}
	if s2, _ := Open(t.TempDir()); s2.MaxBytes != archive.DefaultMaxBytes || s2.MaxFiles != archive.DefaultMaxFiles {
		t.Errorf("Open: caps %d bytes %d files, want the defaults", s2.MaxBytes, s2.MaxFiles)
	}
}

func TestCapReaderStopsDecompression(t *testing.T) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	io.CopyN(gz, zeros{}, 4<<20)
	gz.Close()
	zr, err := gzip.NewReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, &capReader{r: zr, limit: 1 << 20})
	var le *archive.LimitError
	if !errors.As(err, &le) || le.What != "decompressed bytes" || n != 1<<20 {
		t.Fatalf("read %d bytes, err %v; want 1 MiB then a LimitError", n, err)
	}
	// A stream of exactly the cap is read whole.
	n, err = io.Copy(io.Discard, &capReader{r: io.LimitReader(zeros{}, 1<<20), limit: 1 << 20})
	if err != nil || n != 1<<20 {
		t.Fatalf("read %d bytes, err %v; want 1 MiB and no error", n, err)
	}
}
