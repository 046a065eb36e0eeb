package registry

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/berthml/berth/internal/artifacts"
	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/store/memory"
)

func newRegistry(t *testing.T) *Registry {
	t.Helper()
	arts, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := auth.OpenSealer(filepath.Join(t.TempDir(), "secret.key"))
	if err != nil {
		t.Fatal(err)
	}
	return New(memory.New(), arts, sealer)
}

// upload stores a folder holding files and returns its digest.
func upload(t *testing.T, r *Registry, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var tar bytes.Buffer
	if err := archive.WriteTar(&tar, dir); err != nil {
		t.Fatal(err)
	}
	digest, _, err := r.PutArtifact(&tar)
	if err != nil {
		t.Fatal(err)
	}
	return digest
}

func code(err error) diag.Code {
	if de := diag.As(err); de != nil {
		return de.Code
	}
	return ""
}

func TestParseRef(t *testing.T) {
	tests := []struct {
		in   string
		want Ref
		code diag.Code
	}{
		{"azureml:m:3", Ref{"m", "3"}, ""},
		{"m:3", Ref{"m", "3"}, ""},
		{"azureml:m@latest", Ref{Name: "m"}, ""},
		{"azureml:m", Ref{}, diag.BadArgument},
		{"azureml:m:", Ref{}, diag.BadArgument},
		{"azureml://registries/x/models/m/versions/1", Ref{}, diag.ResourceNotFound},
	}
	for _, tt := range tests {
		got, err := ParseRef(store.KindModel, tt.in)
		if code(err) != tt.code || got != tt.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v, %s", tt.in, got, err, tt.want, tt.code)
		}
	}
}

func TestVersionsAndLatest(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t)
	digest := upload(t, r, map[string]string{"model.pkl": "x"})
	for _, want := range []string{"1", "2"} {
		m, err := r.CreateAsset(ctx, store.Asset{Kind: store.KindModel, Name: "m", PathBase: "model.pkl", Artifact: digest})
		if err != nil || m.Version != want || m.Type != "custom_model" {
			t.Fatalf("create: %+v, %v; want version %s of a custom_model", m, err, want)
		}
	}
	if _, err := r.CreateAsset(ctx, store.Asset{Kind: store.KindModel, Name: "m", Version: "2", Artifact: digest}); code(err) != diag.Conflict {
		t.Fatalf("a taken version: %v, want Conflict", err)
	}
	if err := r.ArchiveAsset(ctx, store.KindModel, "m", "2", true); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Resolve(ctx, store.KindModel, "azureml:m@latest"); err != nil || got.Version != "1" {
		t.Fatalf("@latest with version 2 archived: %+v, %v; want version 1", got, err)
	}
	if err := r.ArchiveAsset(ctx, store.KindModel, "m", "1", true); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Resolve(ctx, store.KindModel, "azureml:m@latest"); code(err) != diag.ResourceNotFound {
		t.Fatalf("@latest with every version archived: %v, want ResourceNotFound", err)
	}
	if _, err := r.GetAsset(ctx, store.KindModel, "m", "9"); code(err) != diag.ResourceNotFound {
		t.Fatalf("a missing version: %v, want ResourceNotFound", err)
	}
	if err := r.ArchiveAsset(ctx, store.KindModel, "m", "9", false); code(err) != diag.ResourceNotFound {
		t.Fatalf("restore of a missing version: %v, want ResourceNotFound", err)
	}
}

func TestCreateChecksEachKind(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t)
	plain := upload(t, r, map[string]string{"model.pkl": "x"})
	mlflow := upload(t, r, map[string]string{"MLmodel": "flavors: {}"})
	tests := []struct {
		name string
		a    store.Asset
		code diag.Code
	}{
		{"an mlflow model needs an MLmodel file", store.Asset{Kind: store.KindModel, Name: "m", Type: "mlflow_model", Artifact: plain}, diag.BadArgument},
		{"an mlflow model with one", store.Asset{Kind: store.KindModel, Name: "m", Type: "mlflow_model", Artifact: mlflow}, ""},
		{"an unknown model type", store.Asset{Kind: store.KindModel, Name: "m2", Type: "onnx", Artifact: plain}, diag.BadArgument},
		{"a model without files", store.Asset{Kind: store.KindModel, Name: "m3", Artifact: "sha256:none"}, diag.BadArgument},
		{"a bad name", store.Asset{Kind: store.KindEnvironment, Name: "-env"}, diag.BadArgument},
		{"data with missing files", store.Asset{Kind: store.KindData, Name: "d", Artifact: "sha256:none"}, diag.BadArgument},
		{"an environment", store.Asset{Kind: store.KindEnvironment, Name: "env", Spec: []byte(`{"image":"x"}`)}, ""},
		{"an unknown kind", store.Asset{Kind: "dataset", Name: "x"}, diag.ResourceNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := r.CreateAsset(ctx, tt.a); code(err) != tt.code {
				t.Fatalf("got %v, want %q", err, tt.code)
			}
		})
	}
}

func TestCuratedEnvironmentHint(t *testing.T) {
	_, err := newRegistry(t).Resolve(t.Context(), store.KindEnvironment, "azureml:AzureML-sklearn-1.0@latest")
	de := diag.As(err)
	if de == nil || de.Code != diag.ResourceNotFound || !bytes.Contains([]byte(de.Message), []byte("curated")) {
		t.Fatalf("got %v, want ResourceNotFound with the curated-environment hint", err)
	}
}

func TestAnonymousIsIdempotent(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t)
	a := store.Asset{Kind: store.KindEnvironment, Version: "abc", Spec: []byte(`{}`)}
	for range 2 {
		if err := r.RegisterAnonymous(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	list, err := r.ListAssets(ctx, store.KindEnvironment, AnonymousName)
	if err != nil || len(list) != 1 {
		t.Fatalf("anonymous versions: %d, %v; want 1", len(list), err)
	}
}

func TestSecrets(t *testing.T) {
	ctx := t.Context()
	r := newRegistry(t)
	conn := Connection{Name: "db", Target: "https://db", Metadata: map[string]string{"region": "eu"}, Credentials: map[string]string{"key": "s3cret"}}
	if err := r.PutConnection(ctx, conn); err != nil {
		t.Fatal(err)
	}
	got, err := r.GetConnection(ctx, "db")
	if err != nil || got.Credentials["key"] != "s3cret" {
		t.Fatalf("get: %+v, %v", got, err)
	}
	if m := got.Masked(); m.Credentials["key"] != "***" {
		t.Fatalf("masked: %+v", m)
	}
	env := map[string]string{
		"KEY":    "${{azureml://connections/db/credentials/key}}",
		"TARGET": "${{ azureml://connections/db/target }}",
		"REGION": "${{azureml://connections/db/metadata/region}}",
		"PLAIN":  "value",
	}
	n, err := r.ResolveSecrets(ctx, env)
	if err != nil || n != 3 || env["KEY"] != "s3cret" || env["TARGET"] != "https://db" || env["REGION"] != "eu" || env["PLAIN"] != "value" {
		t.Fatalf("resolved %d: %v, %v", n, env, err)
	}
	bad := map[string]string{
		"A": "${{azureml://connections/db/credentials/nope}}",
		"B": "${{azureml://connections/missing/target}}",
		"C": "${{keyvault:vault/secret}}",
	}
	_, err = r.ResolveSecrets(ctx, bad)
	de := diag.As(err)
	if de == nil || de.Code != diag.SecretsInjectionError || len(de.Details) != 3 {
		t.Fatalf("three bad references: %v, want one SecretsInjectionError with 3 details", err)
	}
	for _, d := range de.Details {
		if bytes.Contains([]byte(d.Message), []byte("s3cret")) {
			t.Fatalf("a problem shows a secret value: %s", d.Message)
		}
	}
	if err := r.DeleteConnection(ctx, "missing"); code(err) != diag.ResourceNotFound {
		t.Fatalf("delete of a missing connection: %v", err)
	}
}

func TestUploadOverTheCapIsOutOfQuota(t *testing.T) {
	arts, err := artifacts.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	arts.MaxBytes = 1 << 10
	r := New(memory.New(), arts, nil)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), bytes.Repeat([]byte("x"), 4<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	var tar bytes.Buffer
	if err := archive.WriteTar(&tar, dir); err != nil {
		t.Fatal(err)
	}
	_, _, err = r.PutArtifact(&tar)
	if de := diag.As(err); de == nil || de.Code != diag.OutOfQuota {
		t.Fatalf("a 4 KiB upload over a 1 KiB cap: %v, want OutOfQuota", err)
	}
}
