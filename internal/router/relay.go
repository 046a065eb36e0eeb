package router

import (
	"io"
	"net/http"
)

// relay copies an instance's answer to the client. An answer of unknown length (a
// streamed run(), chunked) is flushed after every read, so each chunk reaches the
// client when the instance sends it, as it does from an instance in this process.
func relay(w http.ResponseWriter, resp *http.Response) (int64, error) {
	if resp.ContentLength >= 0 {
		return io.Copy(w, resp.Body)
	}
	rc := http.NewResponseController(w)
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := resp.Body.Read(buf)
		if k > 0 {
			if _, werr := w.Write(buf[:k]); werr != nil {
				return n, werr
			}
			n += int64(k)
			rc.Flush()
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, err
		}
	}
}
