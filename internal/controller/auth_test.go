package controller_test

import (
	"context"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/router/table"
	"github.com/berthml/berth/internal/spec"
)

func TestTokenAuthModes(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	for name, mode := range map[string]string{"tok": "aml_token", "aad": "aad_token"} {
		rec, err := h.c.CreateEndpoint(ctx, &spec.Endpoint{Name: name, AuthMode: mode}, false)
		if err != nil {
			t.Fatalf("create %s endpoint: %v", mode, err)
		}
		if got := controller.AuthMode(rec); got != mode {
			t.Errorf("%s: stored auth mode %q, want %q", name, got, mode)
		}
		_, err = h.c.RegenerateKey(ctx, name, "Primary")
		if de := wantDiag(t, err, diag.BadArgument, name); de != nil && !(strings.Contains(de.Message, "does not use keys") && strings.Contains(de.Message, "get-credentials -n "+name)) {
			t.Errorf("regenerate-keys on %s: %q", mode, de.Message)
		}
	}
	tb := h.published()
	for name, want := range map[string]string{"shop": table.AuthKey, "tok": table.AuthAMLToken, "aad": table.AuthAADToken} {
		if got := tb.Endpoints[name].AuthMode; got != want {
			t.Errorf("published auth mode of %s %q, want %q", name, got, want)
		}
	}
	if _, err := h.c.RegenerateKey(ctx, "shop", "Secondary"); err != nil {
		t.Errorf("regenerate-keys on a key endpoint: %v", err)
	}
	if _, err := h.c.UpdateEndpoint(ctx, "shop", controller.EndpointChange{Spec: &spec.Endpoint{Name: "shop", AuthMode: "aml_token"}}); err != nil {
		t.Fatalf("switch shop to aml_token: %v", err)
	}
	if got := h.published().Endpoints["shop"].AuthMode; got != table.AuthAMLToken {
		t.Errorf("after the update shop publishes auth mode %q, want aml_token", got)
	}
}
