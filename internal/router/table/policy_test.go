package table

import "testing"

func TestResponsePolicy(t *testing.T) {
	tests := []struct {
		name                      string
		managed, model            int
		wantManaged, wantKubernet int
	}{
		{"success", 200, 0, 200, 200},
		{"unauthorized", 401, 0, 401, 401},
		{"no deployment", 404, 0, 404, 404},
		{"timeout", 408, 0, 408, 504},
		{"body too large", 413, 0, 413, 413},
		{"instance failed", 424, 0, 424, 502},
		{"model returned 400", 424, 400, 424, 400},
		{"model returned 500", 424, 500, 424, 502},
		{"model returned 503", 424, 503, 424, 503},
		{"too many pending", 429, 0, 429, 503},
		{"berth failed", 500, 0, 500, 500},
		{"worker died", 502, 0, 502, 502},
		{"no ready instance", 503, 0, 503, 503},
		{"conflict", 409, 0, 409, 409},
	}
	m, k := ManagedPolicy(), KubernetesPolicy()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.Status(tt.managed, tt.model); got != tt.wantManaged {
				t.Errorf("managed: %d (model %d) → %d, want %d", tt.managed, tt.model, got, tt.wantManaged)
			}
			if got := k.Status(tt.managed, tt.model); got != tt.wantKubernet {
				t.Errorf("kubernetes: %d (model %d) → %d, want %d", tt.managed, tt.model, got, tt.wantKubernet)
			}
		})
	}
	if m.Kind != "managed" || k.Kind != "kubernetes" {
		t.Errorf("kinds = %q, %q", m.Kind, k.Kind)
	}
}
