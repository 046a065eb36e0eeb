package sealed

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/store/memory"
	"github.com/berthml/berth/internal/store/storetest"
)

func sealer(t *testing.T) *auth.Sealer {
	s, err := auth.OpenSealer(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContract(t *testing.T) {
	storetest.RunContractTests(t, func(t *testing.T) store.Store { return Wrap(memory.New(), sealer(t)) })
}

func TestKeysAreSealedAtRest(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	s := Wrap(inner, sealer(t))
	if err := s.CreateEndpoint(ctx, &store.Endpoint{Name: "ep", PrimaryKey: "p-secret", SecondaryKey: "s-secret"}); err != nil {
		t.Fatal(err)
	}
	raw, _ := inner.GetEndpoint(ctx, "ep")
	if strings.Contains(raw.PrimaryKey+raw.SecondaryKey, "secret") || !strings.HasPrefix(raw.PrimaryKey, prefix) {
		t.Fatalf("the store holds %q / %q: keys must be sealed", raw.PrimaryKey, raw.SecondaryKey)
	}
	got, err := s.GetEndpoint(ctx, "ep")
	if err != nil || got.PrimaryKey != "p-secret" || got.SecondaryKey != "s-secret" {
		t.Fatalf("get: %+v %v", got, err)
	}
	up, err := s.UpdateEndpoint(ctx, "ep", func(e *store.Endpoint) error { e.SecondaryKey = "new-secret"; return nil })
	if err != nil || up.PrimaryKey != "p-secret" || up.SecondaryKey != "new-secret" {
		t.Fatalf("update: %+v %v", up, err)
	}
	if raw, _ := inner.GetEndpoint(ctx, "ep"); strings.Contains(raw.SecondaryKey, "secret") {
		t.Fatalf("the updated key is stored in the clear: %q", raw.SecondaryKey)
	}
	if _, err := Wrap(inner, sealer(t)).GetEndpoint(ctx, "ep"); err == nil || !strings.Contains(err.Error(), "secret.key") {
		t.Fatalf("another secret.key opened the keys: %v", err)
	}
}

func TestMigrateSealsOldKeys(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	inner.CreateEndpoint(ctx, &store.Endpoint{Name: "old", PrimaryKey: "plain-p", SecondaryKey: "plain-s"})
	s := Wrap(inner, sealer(t))
	if got, err := s.GetEndpoint(ctx, "old"); err != nil || got.PrimaryKey != "plain-p" {
		t.Fatalf("an old endpoint reads as it was: %+v %v", got, err)
	}
	if n, err := s.Migrate(ctx); err != nil || n != 1 {
		t.Fatalf("migrate: %d %v", n, err)
	}
	raw, _ := inner.GetEndpoint(ctx, "old")
	if strings.Contains(raw.PrimaryKey, "plain") || strings.Contains(raw.SecondaryKey, "plain") {
		t.Fatalf("still in the clear after Migrate: %+v", raw)
	}
	if got, _ := s.GetEndpoint(ctx, "old"); got.PrimaryKey != "plain-p" || got.SecondaryKey != "plain-s" {
		t.Fatalf("after migrate: %+v", got)
	}
	if n, _ := s.Migrate(ctx); n != 0 {
		t.Fatalf("a second Migrate sealed %d again", n)
	}
}

func TestKubeconfigSealedAtRest(t *testing.T) {
	ctx := t.Context()
	inner := memory.New()
	s := Wrap(inner, sealer(t))
	spec := `{"name":"k8s","type":"kubernetes","namespace":"ml","kubeconfig":"token: kube-secret"}`
	if err := s.PutCompute(ctx, &store.Compute{Name: "k8s", Spec: []byte(spec)}); err != nil {
		t.Fatal(err)
	}
	raw, _ := inner.GetCompute(ctx, "k8s")
	if strings.Contains(string(raw.Spec), "kube-secret") || !strings.Contains(string(raw.Spec), `"namespace":"ml"`) {
		t.Fatalf("the store holds %s: the kubeconfig must be sealed, the rest kept", raw.Spec)
	}
	for _, get := range []func() (*store.Compute, error){
		func() (*store.Compute, error) { return s.GetCompute(ctx, "k8s") },
		func() (*store.Compute, error) { all, err := s.ListComputes(ctx); return all[0], err },
	} {
		c, err := get()
		if err != nil || !strings.Contains(string(c.Spec), `"kubeconfig":"token: kube-secret"`) {
			t.Fatalf("read back: %+v %v", c, err)
		}
	}
	plain := `{"name":"cpu","type":"amlcompute","max_instances":2}`
	if err := s.PutCompute(ctx, &store.Compute{Name: "cpu", Spec: []byte(plain)}); err != nil {
		t.Fatal(err)
	}
	if raw, _ := inner.GetCompute(ctx, "cpu"); string(raw.Spec) != plain {
		t.Fatalf("a compute without kubeconfig was rewritten: %s", raw.Spec)
	}
}
