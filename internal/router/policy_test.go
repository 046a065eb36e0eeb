package router

import (
	"net/http/httptest"
	"strconv"
	"testing"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/router/table"
)

// TestPolicyWriter: an endpoint on a Kubernetes compute answers 502/503/504 where a
// managed one answers 424/429/408, and passes a model's own status (500 becomes 502).
func TestPolicyWriter(t *testing.T) {
	k8s := table.KubernetesPolicy()
	for _, tc := range []struct {
		written, model, want int
	}{
		{200, 0, 200}, {408, 0, 504}, {429, 0, 503}, {424, 0, 502}, {424, 400, 400}, {424, 500, 502}, {404, 0, 404},
	} {
		rec := httptest.NewRecorder()
		w := policyWriter{rec, &k8s}
		if tc.model != 0 {
			w.Header().Set(instance.HeaderErrorStatus, strconv.Itoa(tc.model))
		}
		w.WriteHeader(tc.written)
		if rec.Code != tc.want {
			t.Errorf("written %d (model %d): answered %d, want %d", tc.written, tc.model, rec.Code, tc.want)
		}
	}
}
