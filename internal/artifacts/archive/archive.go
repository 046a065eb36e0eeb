// Package archive owns the artifact upload format: a deterministic tar stream of a
// folder's contents (or of one file), so the same tree always has the same digest.
package archive

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// WriteTar writes a deterministic tar of path to w: a folder's contents with relative
// names in sorted order, or a single file as one entry named by its base name. Times,
// owners and permission bits other than the executable bit are left out, so the bytes
// depend only on names, contents and executability.
func WriteTar(w io.Writer, path string) error {
	info, err := os.Stat(path)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	if !info.IsDir() {
		if err := addFile(tw, path, filepath.Base(path), info); err != nil {
			return err
		}
		return tw.Close()
	}
	var names []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == path {
			return nil
		}
		if d.Name() == "__pycache__" && d.IsDir() {
			return filepath.SkipDir
		}
		rel, err := filepath.Rel(path, p)
		if err != nil {
			return err
		}
		names = append(names, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		return err
	}
	sort.Strings(names)
	for _, name := range names {
		full := filepath.Join(path, filepath.FromSlash(name))
		info, err := os.Lstat(full)
		if err != nil {
			return err
		}
		switch {
		case info.IsDir():
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, Format: tar.FormatPAX}); err != nil {
				return err
			}
		case info.Mode()&fs.ModeSymlink != 0:
			// Follow links: the server gets the content the user sees.
			target, err := os.Stat(full)
			if err != nil {
				return fmt.Errorf("%s: broken link: %w", full, err)
			}
			if target.IsDir() {
				return fmt.Errorf("%s: links to folders are not supported; copy the folder instead", full)
			}
			if err := addFile(tw, full, name, target); err != nil {
				return err
			}
		case info.Mode().IsRegular():
			if err := addFile(tw, full, name, info); err != nil {
				return err
			}
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, full, name string, info fs.FileInfo) error {
	mode := int64(0o644)
	if info.Mode()&0o111 != 0 {
		mode = 0o755
	}
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: info.Size(), Format: tar.FormatPAX}); err != nil {
		return err
	}
	f, err := os.Open(full)
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(tw, f)
	if err != nil {
		return fmt.Errorf("%s: %w", full, err)
	}
	if n != info.Size() {
		return fmt.Errorf("%s changed while it was read", full)
	}
	return nil
}

// DigestContext returns "sha256:<hex>" of the bytes WriteTar writes for path; it stops
// with ctx's error when ctx is done, so hashing a large model folder ends on Ctrl-C.
func DigestContext(ctx context.Context, path string) (string, error) {
	h := sha256.New()
	w := writerFunc(func(p []byte) (int, error) {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		return h.Write(p)
	})
	if err := WriteTar(w, path); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), nil
}

// writerFunc is a function as an io.Writer.
type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// CheckName rejects an entry name that could escape the folder it is extracted into.
func CheckName(name string) error {
	clean := filepath.ToSlash(filepath.Clean(filepath.FromSlash(name)))
	if name == "" || strings.HasPrefix(name, "/") || clean == ".." || strings.HasPrefix(clean, "../") || filepath.IsAbs(name) {
		return fmt.Errorf("entry %q: absolute paths and .. are not allowed", name)
	}
	return nil
}

// Default caps of Extract.
const (
	// DefaultMaxBytes is the most bytes of file content one archive may expand to (20 GiB).
	DefaultMaxBytes int64 = 20 << 30
	// DefaultMaxFiles is the most entries (files and folders) one archive may hold.
	DefaultMaxFiles = 1_000_000
)

// Limits caps what an extraction writes. A zero field takes its default.
type Limits struct {
	// MaxBytes is the most bytes of file content; DefaultMaxBytes when zero.
	MaxBytes int64
	// MaxFiles is the most entries, files and folders; DefaultMaxFiles when zero.
	MaxFiles int
}

// withDefaults returns l with zero fields set to their defaults.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxFiles <= 0 {
		l.MaxFiles = DefaultMaxFiles
	}
	return l
}

// LimitError is an archive that expands past a cap of Limits. Got is the total the
// archive had reached when it was stopped, so the whole archive is at least that large.
type LimitError struct {
	// What is "bytes" or "files".
	What string
	// Limit is the cap.
	Limit int64
	// Got is the total at the entry that passed the cap.
	Got int64
}

// Error names both sizes.
func (e *LimitError) Error() string {
	return fmt.Sprintf("the archive expands to at least %d %s, more than the limit of %d %s", e.Got, e.What, e.Limit, e.What)
}

// Extract writes the files and folders of a tar stream under dst, refusing entries that
// would land outside it and anything but files and folders, within the default Limits.
func Extract(tr *tar.Reader, dst string) error {
	return Limits{}.Extract(tr, dst)
}

// Extract writes the files and folders of a tar stream under dst like the function
// Extract, and stops with a *LimitError before writing the entry that would pass a cap.
// What it wrote before stopping stays under dst: the caller removes it.
func (l Limits) Extract(tr *tar.Reader, dst string) error {
	l = l.withDefaults()
	var files, total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read tar: %w", err)
		}
		if files++; files > int64(l.MaxFiles) {
			return &LimitError{What: "files", Limit: int64(l.MaxFiles), Got: files}
		}
		// hdr.Size is what the tar reader will yield for the entry, no more: checking it
		// first stops a huge entry before a byte of it is written.
		if hdr.Typeflag == tar.TypeReg && (hdr.Size > l.MaxBytes-total) {
			return &LimitError{What: "bytes", Limit: l.MaxBytes, Got: total + min(hdr.Size, math.MaxInt64-total)}
		}
		if err := extractEntry(tr, hdr, dst); err != nil {
			return err
		}
		if hdr.Typeflag == tar.TypeReg {
			total += hdr.Size
		}
	}
}

// extractEntry writes one entry under dst.
func extractEntry(tr *tar.Reader, hdr *tar.Header, dst string) error {
	if err := CheckName(hdr.Name); err != nil {
		return err
	}
	target := filepath.Join(dst, filepath.FromSlash(hdr.Name))
	switch hdr.Typeflag {
	case tar.TypeDir:
		return os.MkdirAll(target, 0o755)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return err
		}
		mode := os.FileMode(0o644)
		if hdr.Mode&0o111 != 0 {
			mode = 0o755
		}
		f, err := os.OpenFile(target, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		if _, err := io.Copy(f, tr); err != nil {
			f.Close()
			return fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
		return f.Close()
	default:
		return fmt.Errorf("entry %q: only files and folders are accepted (type %q)", hdr.Name, string(hdr.Typeflag))
	}
}
