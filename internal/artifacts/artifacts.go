// Package artifacts owns the content-addressed store of uploaded model and code
// folders: immutable trees under <root>/sha256/<hex>/, copied into each instance.
package artifacts

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/berthml/berth/internal/artifacts/archive"
)

// ErrNotFound is returned for a digest the store does not hold.
var ErrNotFound = errors.New("artifact not found")

// Store keeps artifacts under one root folder. Set MaxBytes and MaxFiles after Open,
// before the first Put, to change the caps of an upload.
type Store struct {
	root string
	// MaxBytes is the most bytes of file content one upload may expand to
	// (archive.DefaultMaxBytes, 20 GiB, from Open). Over it Put fails with a
	// *archive.LimitError naming both sizes.
	MaxBytes int64
	// MaxFiles is the most files and folders one upload may hold
	// (archive.DefaultMaxFiles from Open).
	MaxFiles int
}

// tarOverhead is the room a tar stream needs per entry beyond file content: a header
// block and up to one block of padding, plus a PAX record block.
const tarOverhead = 3 * 512

// Open returns the store rooted at root, creating it.
func Open(root string) (*Store, error) {
	if err := os.MkdirAll(filepath.Join(root, "sha256"), 0o755); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(root, "tmp"), 0o755); err != nil {
		return nil, err
	}
	return &Store{root: root, MaxBytes: archive.DefaultMaxBytes, MaxFiles: archive.DefaultMaxFiles}, nil
}

func (s *Store) dir(digest string) (string, error) {
	hexPart, ok := strings.CutPrefix(digest, "sha256:")
	if !ok || len(hexPart) != 64 {
		return "", fmt.Errorf("artifact digest %q: want sha256:<64 hex digits>", digest)
	}
	if _, err := hex.DecodeString(hexPart); err != nil {
		return "", fmt.Errorf("artifact digest %q: %w", digest, err)
	}
	return filepath.Join(s.root, "sha256", hexPart), nil
}

// Has reports whether the artifact is stored.
func (s *Store) Has(digest string) bool {
	d, err := s.dir(digest)
	if err != nil {
		return false
	}
	_, err = os.Stat(d)
	return err == nil
}

// Path returns the folder of a stored artifact.
func (s *Store) Path(digest string) (string, error) {
	d, err := s.dir(digest)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("%s: %w", digest, ErrNotFound)
	}
	return d, nil
}

// Put reads a tar stream (plain or gzip), extracts it and returns its digest (of the
// stream as received) and size. A stream already stored is not extracted again. An
// upload that expands past MaxBytes or MaxFiles (or whose gzip stream decompresses to
// more than the tar of such a tree can hold) fails with a *archive.LimitError and
// leaves nothing behind.
func (s *Store) Put(r io.Reader) (string, int64, error) {
	lim := archive.Limits{MaxBytes: s.MaxBytes, MaxFiles: s.MaxFiles}
	tmp, err := os.MkdirTemp(filepath.Join(s.root, "tmp"), "upload-")
	if err != nil {
		return "", 0, err
	}
	defer os.RemoveAll(tmp)
	h := sha256.New()
	counter := &countWriter{}
	br := bufio.NewReader(io.TeeReader(r, io.MultiWriter(h, counter)))
	var src io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		gz, err := gzip.NewReader(br)
		if err != nil {
			return "", 0, fmt.Errorf("read gzip: %w", err)
		}
		src = gz
	}
	src = &capReader{r: src, limit: decompressedCap(lim)}
	if err := lim.Extract(tar.NewReader(src), tmp); err != nil {
		return "", 0, err
	}
	// Drain what the tar reader left (padding) so the digest covers the whole stream.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return "", 0, err
	}
	digest := "sha256:" + hex.EncodeToString(h.Sum(nil))
	final, _ := s.dir(digest)
	if _, err := os.Stat(final); err == nil {
		return digest, counter.n, nil
	}
	if err := makeReadOnly(tmp); err != nil {
		return "", 0, err
	}
	if err := os.Rename(tmp, final); err != nil {
		if _, statErr := os.Stat(final); statErr == nil {
			return digest, counter.n, nil // stored meanwhile by a concurrent upload
		}
		return "", 0, err
	}
	return digest, counter.n, nil
}

// decompressedCap is the most bytes a tar stream within lim can take: the content
// plus a header and padding per entry.
func decompressedCap(lim archive.Limits) int64 {
	maxBytes, maxFiles := lim.MaxBytes, int64(lim.MaxFiles)
	if maxBytes <= 0 {
		maxBytes = archive.DefaultMaxBytes
	}
	if maxFiles <= 0 {
		maxFiles = archive.DefaultMaxFiles
	}
	return maxBytes + (maxFiles+2)*tarOverhead
}

// capReader reads r up to limit bytes, then fails with a *archive.LimitError: a
// gzip bomb stops at the cap, whatever its tar headers claim.
type capReader struct {
	r     io.Reader
	n     int64
	limit int64
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n >= c.limit {
		// One byte more tells a stream that ends exactly at the cap from a longer one.
		var one [1]byte
		if k, _ := io.ReadFull(c.r, one[:]); k == 0 {
			return 0, io.EOF
		}
		return 0, &archive.LimitError{What: "decompressed bytes", Limit: c.limit, Got: c.n + 1}
	}
	if int64(len(p)) > c.limit-c.n {
		p = p[:c.limit-c.n]
	}
	k, err := c.r.Read(p)
	c.n += int64(k)
	return k, err
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

func makeReadOnly(root string) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		return os.Chmod(p, info.Mode().Perm()&^0o222)
	})
}

// CopyTo copies a stored artifact's tree into dst (created), owner-writable, and
// returns how many files and bytes it copied.
func (s *Store) CopyTo(digest, dst string) (files int, bytes int64, err error) {
	src, err := s.Path(digest)
	if err != nil {
		return 0, 0, err
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		return copyFile(p, target, info.Mode().Perm())
	})
	return files, bytes, err
}

// LinkTo lays out a stored artifact's tree in dst as hard links to the stored, read-only
// files (folders are created, writable), so an instance's model costs no disk of its
// own; a file that cannot be linked (another file system) is copied. It returns how
// many files and bytes it laid out.
func (s *Store) LinkTo(digest, dst string) (files int, bytes int64, err error) {
	src, err := s.Path(digest)
	if err != nil {
		return 0, 0, err
	}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		files++
		bytes += info.Size()
		if os.Link(p, target) == nil {
			return nil
		}
		return copyFile(p, target, info.Mode().Perm())
	})
	return files, bytes, err
}

// copyFile copies one file, owner-writable.
func copyFile(src, dst string, perm fs.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, perm|0o200)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// Delete removes a stored artifact.
func (s *Store) Delete(digest string) error {
	d, err := s.Path(digest)
	if err != nil {
		return err
	}
	filepath.WalkDir(d, func(p string, de fs.DirEntry, err error) error {
		if err == nil {
			os.Chmod(p, 0o755)
		}
		return nil
	})
	return os.RemoveAll(d)
}

// Size returns the total bytes of a stored artifact's files.
func (s *Store) Size(digest string) (int64, error) {
	root, err := s.Path(digest)
	if err != nil {
		return 0, err
	}
	var total int64
	err = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			total += info.Size()
		}
		return err
	})
	return total, err
}
