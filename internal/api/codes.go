package api

import (
	"net/http"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// listErrorCodes answers GET /error-codes with the catalogue of documented codes, each
// with its cause and fix, so that the studio explains a failed deployment as
// `berth diagnose` does.
func (a *api) listErrorCodes(w http.ResponseWriter, _ *http.Request) {
	cat := diag.Catalogue()
	out := make([]wire.ErrorCode, 0, len(cat))
	for _, e := range cat {
		out = append(out, wire.ErrorCode{Code: string(e.Code), Reason: e.Reason, Fix: e.Remedy, Berth: e.Berth})
	}
	writeJSON(w, http.StatusOK, out)
}
