package api_test

import (
	"bytes"
	"net/http"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/api"
	"github.com/berthml/berth/internal/diag"
)

// TestBodyOverLimit: a JSON body past api.MaxBodyBytes is 413 RequestEntityTooLarge
// naming the limit, not a JSON syntax error; a body just under it is read.
func TestBodyOverLimit(t *testing.T) {
	hs := newHarness(t)
	// A syntactically valid object whose one string runs past the limit (17 MiB).
	big := `{"spec": {"name": "e1", "description": "` + strings.Repeat("x", 17<<20) + `"}}`
	rec := hs.do("POST", "/endpoints", big)
	e := errorOf(t, rec, http.StatusRequestEntityTooLarge)
	if e.Code != string(diag.RequestEntityTooLarge) || !strings.Contains(e.Message, "16777216 bytes") {
		t.Errorf("error = %+v, want RequestEntityTooLarge naming the limit of %d bytes", e, api.MaxBodyBytes)
	}

	// Under the limit, the same request is judged on its content instead.
	var small bytes.Buffer
	small.WriteString(`{"spec": {"name": "e1", "description": "`)
	small.WriteString(strings.Repeat("x", api.MaxBodyBytes-1024))
	small.WriteString(`"}}`)
	rec = hs.do("POST", "/endpoints", small.Bytes())
	if rec.Code == http.StatusRequestEntityTooLarge {
		t.Errorf("a body of %d bytes got 413, want it read", small.Len())
	}

	// Trailing data is still a 400.
	rec = hs.do("POST", "/endpoints", `{"spec": {"name": "e1"}} {}`)
	if e := errorOf(t, rec, http.StatusBadRequest); !strings.Contains(e.Message, "found more after it") {
		t.Errorf("trailing object: %+v, want BadArgument about more data", e)
	}
}
