package router

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/router/table"
)

// serveLocal hands a scoring request to an instance that runs in this process: its
// handler is called directly, with no second HTTP hop. localWriter gives the answer the
// same meaning the HTTP path gives it (424 for model errors, 408 past the deadline, 413
// for a body over the limit).
func (r *Router) serveLocal(ctx context.Context, w http.ResponseWriter, req *http.Request, body io.Reader, inst *table.Instance, dep *table.Deployment, reqID, clientID string) int {
	out := req.WithContext(ctx)
	u := *req.URL
	u.Path = "/score"
	out.URL = &u
	// The incoming request is ours: its headers are changed in place, not copied.
	for _, k := range dropRequest {
		out.Header.Del(k)
	}
	out.Header.Set("X-Request-Id", reqID)
	if clientID != "" {
		out.Header.Set("X-Ms-Client-Request-Id", clientID)
	}
	br := &bodyReader{r: body}
	out.Body = br
	lw := &localWriter{w: w, router: r, dep: dep, body: br, ended: ctx.Done(), clientGone: req.Context().Done()}
	inst.Handler.ServeHTTP(lw, out)
	if lw.status == 0 {
		lw.WriteHeader(http.StatusOK)
	}
	return lw.status
}

// bodyReader remembers that the body went over the size limit.
type bodyReader struct {
	r   io.Reader
	err *http.MaxBytesError
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if b.r == nil {
		return 0, io.EOF
	}
	n, err := b.r.Read(p)
	if err != nil {
		errors.As(err, &b.err)
	}
	return n, err
}

func (b *bodyReader) Close() error { return nil }

// instanceHeaders are set by an instance on its answer; a replaced answer drops them.
func instanceHeaders() []string {
	return []string{instance.HeaderFromRun, "x-ms-run-function-failed", "x-ms-run-fn-exec-ms", "x-ms-server-version", "x-ms-request-id"}
}

// localWriter passes an in-process instance's answer to the client.
type localWriter struct {
	w      http.ResponseWriter
	router *Router
	dep    *table.Deployment
	body   *bodyReader
	// ended closes when the request ends (its deadline included); clientGone when its
	// client's connection does.
	ended, clientGone <-chan struct{}
	status            int  // 0 until the header is written
	replaced          bool // the router answered instead: the instance's writes are dropped
}

func (l *localWriter) Header() http.Header { return l.w.Header() }

// timedOut reports that the request's deadline passed while its client still waits.
func (l *localWriter) timedOut() bool { return closed(l.ended) && !closed(l.clientGone) }

func closed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func (l *localWriter) WriteHeader(status int) {
	if l.status != 0 {
		return
	}
	h := l.w.Header()
	if l.body.err != nil || l.timedOut() {
		for _, k := range instanceHeaders() {
			h.Del(k)
		}
		l.replaced = true
		if l.body.err != nil {
			l.status = l.router.bodyError(l.w, l.body.err)
			return
		}
		l.status = l.router.timeout(l.w, l.dep, l.dep.RequestTimeout)
		return
	}
	fromRun := h.Get(instance.HeaderFromRun) != ""
	h.Del(instance.HeaderFromRun)
	status = modelError(h, status, fromRun)
	l.status = status
	l.w.WriteHeader(status)
}

// Flush sends what was written so far (a streamed answer's chunks).
func (l *localWriter) Flush() {
	if l.status == 0 {
		l.WriteHeader(http.StatusOK)
	}
	if f, ok := l.w.(http.Flusher); ok && !l.replaced {
		f.Flush()
	}
}

func (l *localWriter) Write(b []byte) (int, error) {
	if l.status == 0 {
		l.WriteHeader(http.StatusOK)
	}
	if l.replaced {
		return len(b), nil
	}
	return l.w.Write(b)
}

// call sends a request that needs no streaming (a mirror copy, a swagger document) to
// an instance, in-process or over HTTP, and returns the whole answer.
func (r *Router) call(ctx context.Context, inst *table.Instance, method, path, query string, header http.Header, body []byte) (*http.Response, error) {
	if inst.Handler == nil {
		target := "http://" + inst.Addr + path
		if query != "" {
			target += "?" + query
		}
		req, err := http.NewRequestWithContext(ctx, method, target, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if header != nil {
			req.Header = header
		}
		return r.http.Do(req)
	}
	req, err := http.NewRequestWithContext(ctx, method, (&url.URL{Path: path, RawQuery: query}).String(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if header != nil {
		req.Header = header
	}
	rec := &recorder{header: http.Header{}}
	inst.Handler.ServeHTTP(rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{StatusCode: rec.status, Header: rec.header, Body: io.NopCloser(&rec.body)}, nil
}

// recorder keeps a whole in-process answer.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) WriteHeader(status int) {
	if r.status == 0 {
		r.status = status
	}
}

func (r *recorder) Write(b []byte) (int, error) {
	r.WriteHeader(http.StatusOK)
	return r.body.Write(b)
}
