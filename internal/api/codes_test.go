package api_test

import (
	"net/http"
	"testing"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// TestErrorCodesListTheCatalogue checks GET /error-codes answers every documented code
// with the cause and fix `berth diagnose` prints.
func TestErrorCodesListTheCatalogue(t *testing.T) {
	hs := newHarness(t)
	got := decodeAs[[]wire.ErrorCode](t, hs.do(http.MethodGet, "/error-codes", nil), http.StatusOK)
	if len(got) != len(diag.Catalogue()) {
		t.Fatalf("%d codes, want %d", len(got), len(diag.Catalogue()))
	}
	want, _ := diag.Lookup(diag.UserScriptInitFailed)
	for _, c := range got {
		if c.Code == string(want.Code) {
			if c.Reason != want.Reason || c.Fix != want.Remedy || c.Berth != want.Berth {
				t.Errorf("%s = %+v, want the catalogue's entry %+v", c.Code, c, want)
			}
			return
		}
	}
	t.Errorf("no %s among %d codes", want.Code, len(got))
}
