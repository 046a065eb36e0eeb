package client

import (
	"context"
	"io"
	"net/http"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// HTTPError is an error answer together with its HTTP status, for callers that act on
// the status itself (a gateway's 503 is worth another try, a 404 is not). Err is the
// server's error, or one naming the status when the body was not a Berth error.
type HTTPError struct {
	Status int
	Err    *diag.Error
}

// Error is the server's error.
func (e *HTTPError) Error() string { return e.Err.Error() }

// Unwrap returns the *diag.Error, so diag.As finds it.
func (e *HTTPError) Unwrap() error { return e.Err }

// maxErrorBody is the most of an error answer OpenArtifact reads.
const maxErrorBody = 64 << 10

// OpenArtifact starts downloading an artifact and returns its tar stream as the server
// sends it, unbuffered, for models too large to hold in memory; the caller closes it.
// A transport error is returned as the *url.Error it is (errors.Is finds the errno), an error
// answer as an *HTTPError.
func (c *Client) OpenArtifact(ctx context.Context, digest string) (io.ReadCloser, error) {
	path := "/artifacts/" + esc(digest)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+wire.APIPrefix+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err // a *url.Error: it names the method and URL
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		data, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return nil, &HTTPError{Status: resp.StatusCode, Err: diag.As(decodeError(resp.StatusCode, data))}
	}
	return resp.Body, nil
}
