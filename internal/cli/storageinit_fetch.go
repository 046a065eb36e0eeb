package cli

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
)

// firstRetryDelay is the wait after the first failed try; each wait doubles, within
// --retry-for.
const firstRetryDelay = time.Second

// minAnswerWait is the least time one try waits for the server's answer, however little
// of --retry-for is left: a dial to an address that drops packets would otherwise hang
// for minutes.
const minAnswerWait = 5 * time.Second

// errNoAnswer is a try the server did not answer in time.
var errNoAnswer = errors.New("no answer")

// netError is a failure to reach the server or to read its answer: worth another try.
type netError struct{ err error }

func (e *netError) Error() string { return e.err.Error() }
func (e *netError) Unwrap() error { return e.err }

// unpackError is an artifact the server sent that cannot be laid out as it is.
type unpackError struct{ err error }

func (e *unpackError) Error() string { return e.err.Error() }
func (e *unpackError) Unwrap() error { return e.err }

// fetched is what one download laid out.
type fetched struct {
	files  int
	bytes  int64 // file content
	stream int64 // bytes received
	dir    string
}

// fetch downloads one artifact, retrying network errors, and logs one line.
func (si *storageInit) fetch(ctx context.Context, c *client.Client, a artifact) error {
	start := si.now()
	if err := os.MkdirAll(filepath.Dir(a.dir), 0o755); err != nil {
		return fmt.Errorf("%s %s: create %s: %w", a.what, a.digest, filepath.Dir(a.dir), err)
	}
	deadline := start.Add(si.retryFor)
	delay := si.backoff
	if delay <= 0 {
		delay = firstRetryDelay
	}
	for try := 1; ; try++ {
		got, err := si.download(ctx, c, a, max(deadline.Sub(si.now()), minAnswerWait))
		if err == nil {
			si.logf("downloaded %s %s to %s: %d files, %d bytes (stream of %d bytes, digest checked) in %s",
				a.what, a.digest, got.dir, got.files, got.bytes, got.stream, si.now().Sub(start).Round(time.Millisecond))
			return nil
		}
		left := deadline.Sub(si.now())
		if !transient(err) || left <= 0 || ctx.Err() != nil {
			return si.explain(a, err, try, si.now().Sub(start))
		}
		wait := min(delay, left)
		si.logf("%s %s: try %d failed: %s; retrying in %s (for up to %s, --retry-for)", a.what, a.digest, try, brief(err), wait.Round(time.Millisecond), si.retryFor)
		select {
		case <-ctx.Done():
			return si.explain(a, ctx.Err(), try, si.now().Sub(start))
		case <-time.After(wait):
		}
		delay *= 2
	}
}

// download makes one try: it streams the artifact into a fresh folder next to a.dir,
// checks the digest of what it received, and puts the folder in a.dir's place.
// answerWait bounds the wait for the server's answer, not the download itself.
func (si *storageInit) download(ctx context.Context, c *client.Client, a artifact, answerWait time.Duration) (fetched, error) {
	body, err := openArtifact(ctx, c, a.digest, answerWait)
	if err != nil {
		return fetched{}, err
	}
	defer body.Close()
	tmp, err := os.MkdirTemp(filepath.Dir(a.dir), "."+filepath.Base(a.dir)+".download-")
	if err != nil {
		return fetched{}, fmt.Errorf("create a folder next to %s: %w", a.dir, err)
	}
	defer os.RemoveAll(tmp) // gone already once renamed
	src := &recordingReader{r: body}
	h := sha256.New()
	tee := io.TeeReader(src, h)
	if err := archive.Extract(tar.NewReader(tee), tmp); err != nil {
		if src.err != nil {
			return fetched{}, &netError{fmt.Errorf("read the artifact from the server: %w", src.err)}
		}
		return fetched{}, &unpackError{err}
	}
	// The rest of the stream (tar end blocks) counts towards the digest.
	if _, err := io.Copy(io.Discard, tee); err != nil {
		return fetched{}, &netError{fmt.Errorf("read the artifact from the server: %w", err)}
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != a.digest {
		return fetched{}, &unpackError{fmt.Errorf("the server sent %d bytes whose digest is %s, not %s", src.n, got, a.digest)}
	}
	files, size, err := countTree(tmp)
	if err != nil {
		return fetched{}, err
	}
	dst, err := place(tmp, a)
	return fetched{files: files, bytes: size, stream: src.n, dir: dst}, err
}

// place puts the downloaded tree tmp in a.dir's place and returns where it landed: a
// folder uploaded as <base> keeps its name beneath a.dir, a single file named <base>
// sits directly in a.dir (as stage lays out a model).
func place(tmp string, a artifact) (string, error) {
	dst := a.dir
	if a.base != "" {
		entries, err := os.ReadDir(tmp)
		if err != nil {
			return "", err
		}
		if len(entries) != 1 || entries[0].Name() != a.base || !entries[0].Type().IsRegular() {
			dst = filepath.Join(a.dir, a.base)
		}
	}
	if err := os.RemoveAll(a.dir); err != nil {
		return "", fmt.Errorf("replace %s: %w", a.dir, err)
	}
	if dst != a.dir {
		if err := os.MkdirAll(a.dir, 0o755); err != nil {
			return "", err
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		return "", fmt.Errorf("move the download into %s: %w", dst, err)
	}
	return dst, nil
}

// openArtifact asks for the artifact's stream and waits at most answerWait for the
// answer; the stream itself may take as long as it takes.
func openArtifact(ctx context.Context, c *client.Client, digest string, answerWait time.Duration) (io.ReadCloser, error) {
	tryCtx, cancel := context.WithCancel(ctx)
	timer := time.AfterFunc(answerWait, cancel)
	body, err := c.OpenArtifact(tryCtx, digest)
	if !timer.Stop() && ctx.Err() == nil {
		if err == nil {
			body.Close()
		}
		return nil, &netError{fmt.Errorf("%w within %s", errNoAnswer, answerWait.Round(time.Millisecond))}
	}
	if err != nil {
		cancel()
		var he *client.HTTPError
		if errors.As(err, &he) {
			return nil, err
		}
		// The method and URL are in every message already; keep the cause.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return nil, &netError{err}
	}
	return cancelOnClose{body, cancel}, nil
}

// cancelOnClose releases the try's context when the stream is closed.
type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// recordingReader counts what it reads and keeps its first error other than io.EOF,
// so a broken connection is told from a broken archive.
type recordingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (r *recordingReader) Read(p []byte) (int, error) {
	k, err := r.r.Read(p)
	r.n += int64(k)
	if err != nil && !errors.Is(err, io.EOF) && r.err == nil {
		r.err = err
	}
	return k, err
}

// countTree returns how many files and bytes of content a folder holds.
func countTree(root string) (files int, size int64, err error) {
	err = filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			files++
			size += info.Size()
		}
		return err
	})
	return files, size, err
}

// brief is err for the log of a try: an error answer with its status.
func brief(err error) string {
	var he *client.HTTPError
	if errors.As(err, &he) && !strings.HasPrefix(he.Err.Message, "server answered") {
		return fmt.Sprintf("server answered %d: %s", he.Status, he.Err.Message)
	} else if he != nil {
		return he.Err.Message
	}
	return err.Error()
}

// transient reports whether another try may succeed: the server could not be reached
// or its connection broke, or a gateway in front of it is not ready.
func transient(err error) bool {
	var he *client.HTTPError
	if errors.As(err, &he) {
		switch he.Status {
		case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			return true
		}
		return false
	}
	var ne *netError
	if !errors.As(err, &ne) {
		return false
	}
	var dns *net.DNSError
	var timeout interface{ Timeout() bool }
	switch {
	case errors.As(err, &dns),
		errors.As(err, &timeout) && timeout.Timeout(),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH),
		errors.Is(err, syscall.ECONNABORTED), errors.Is(err, syscall.EPIPE),
		errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF),
		errors.Is(err, errNoAnswer):
		return true
	}
	return false
}

// explain turns the last error of an artifact into the one message the pod's log ends
// with: what failed, against which server, and the fix.
func (si *storageInit) explain(a artifact, err error, tries int, took time.Duration) error {
	what := fmt.Sprintf("%s %s (%s)", a.what, a.digest, a.flag)
	var he *client.HTTPError
	var ne *netError
	var ue *unpackError
	switch {
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("fetch %s from %s: stopped: %w", what, si.server, err)
	case errors.As(err, &he) && (he.Status == http.StatusUnauthorized || he.Status == http.StatusForbidden):
		return diag.New(diag.Unauthorized,
			"the Berth server at %s refused the token in BERTH_TOKEN while fetching %s (%d): the token comes from the deployment's Secret (%s); if the server's admin token changed since the deployment was applied, apply the deployment again so the Secret carries the current one",
			si.server, what, he.Status, si.secretHint())
	case errors.As(err, &he) && he.Status == http.StatusNotFound:
		return diag.New(diag.ResourceNotFound,
			"the Berth server at %s does not store %s: the artifact is gone (deleted, or the server runs with another data dir); deploy again (`berth online-deployment update -f <deployment.yml>`) so the CLI uploads the %s again",
			si.server, what, a.what)
	case errors.As(err, &he):
		return diag.New(he.Err.Code, "the Berth server at %s failed to send %s (%d, after %d tries in %s): %s",
			si.server, what, he.Status, tries, took.Round(time.Millisecond), he.Err.Message)
	case errors.As(err, &ne):
		return fmt.Errorf("cannot reach the Berth server at %s (--server) to fetch %s: %d tries in %s, the last: %v; "+
			"the pod must reach the server at that address: start `berth serve` with --public-url (BERTH_PUBLIC_URL) set to an address the cluster can route to (not localhost), or fix --server, and allow more time with --retry-for if the network is slow to come up",
			si.server, what, tries, took.Round(time.Millisecond), err)
	case errors.As(err, &ue):
		return diag.New(diag.BadArgument,
			"the Berth server at %s sent %s, which cannot be laid out: %v; the stored artifact is damaged or was not uploaded by the berth CLI: deploy again so the CLI uploads the %s again",
			si.server, what, ue.err, a.what)
	}
	return fmt.Errorf("fetch %s from %s: %w", what, si.server, err)
}
