package auth

import (
	"bytes"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// clock is a settable time source for the issuer.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newTestIssuer(t *testing.T) (*Issuer, *clock) {
	t.Helper()
	c := &clock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	iss, err := NewIssuer(bytes.Repeat([]byte{7}, 32), c.now)
	if err != nil {
		t.Fatal(err)
	}
	return iss, c
}

func TestEndpointTokenMintAndValidate(t *testing.T) {
	iss, c := newTestIssuer(t)
	tok, err := iss.EndpointToken("ep1")
	if err != nil {
		t.Fatal(err)
	}
	if !LooksLikeToken(tok.Value) {
		t.Fatalf("not a JWT: %q", tok.Value)
	}
	if want := c.t.Add(time.Hour); !tok.Expiry.Equal(want) {
		t.Errorf("expiry %v, want %v", tok.Expiry, want)
	}
	if want := c.t.Add(30 * time.Minute); !tok.RefreshAfter.Equal(want) {
		t.Errorf("refresh after %v, want %v", tok.RefreshAfter, want)
	}
	if err := iss.ValidateEndpoint(tok.Value, "ep1"); err != nil {
		t.Fatalf("a fresh token was refused: %v", err)
	}
	if twin, _ := iss.EndpointToken("ep1"); twin.Value == tok.Value {
		t.Error("two tokens minted at the same instant are equal")
	}
	c.t = c.t.Add(59 * time.Minute)
	if err := iss.ValidateEndpoint(tok.Value, "ep1"); err != nil {
		t.Fatalf("a token one minute before expiry was refused: %v", err)
	}
	c.t = c.t.Add(2 * time.Minute)
	if err := iss.ValidateEndpoint(tok.Value, "ep1"); !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("an expired token: got %v, want ErrTokenExpired", err)
	}
	again, err := iss.EndpointToken("ep1")
	if err != nil || again.Value == tok.Value {
		t.Fatalf("a new token must differ from the expired one: %v", err)
	}
	if err := iss.ValidateEndpoint(again.Value, "ep1"); err != nil {
		t.Fatalf("a token fetched again was refused: %v", err)
	}
}

func TestTokenRefusals(t *testing.T) {
	iss, c := newTestIssuer(t)
	tok, _ := iss.EndpointToken("ep1")
	access, _ := iss.AccessToken("")
	other, err := NewIssuer(bytes.Repeat([]byte{8}, 32), c.now)
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := other.EndpointToken("ep1")
	// Re-point the claims at another endpoint and keep the original signature.
	parts := strings.Split(tok.Value, ".")
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	claims = bytes.Replace(claims, []byte("berth-endpoint:ep1"), []byte("berth-endpoint:ep2"), 1)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(claims) + "." + parts[2]
	key, _ := NewKey()
	for _, tc := range []struct {
		name, tok, endpoint string
		want                error
	}{
		{"another endpoint", tok.Value, "ep2", ErrTokenAudience},
		{"an access token", access.Value, "ep1", ErrTokenAudience},
		{"another server's key", forged.Value, "ep1", ErrTokenSignature},
		{"tampered claims", tampered, "ep2", ErrTokenSignature},
		{"a key", key, "ep1", ErrTokenMalformed},
		{"empty", "", "ep1", ErrTokenMalformed},
	} {
		if err := iss.ValidateEndpoint(tc.tok, tc.endpoint); !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
	}
}

func TestAccessTokens(t *testing.T) {
	iss, c := newTestIssuer(t)
	for _, r := range []string{"", MLResource, "https://ml.azure.com/", "https://ml.azure.com/.default", "https://management.azure.com/"} {
		tok, err := iss.AccessToken(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := iss.ValidateAccess(tok.Value); err != nil {
			t.Errorf("resource %q: %v", r, err)
		}
	}
	storage, _ := iss.AccessToken("https://storage.azure.com/")
	if err := iss.ValidateAccess(storage.Value); !errors.Is(err, ErrTokenAudience) {
		t.Errorf("a storage token: got %v, want ErrTokenAudience", err)
	}
	ep, _ := iss.EndpointToken("ep1")
	if err := iss.ValidateAccess(ep.Value); !errors.Is(err, ErrTokenAudience) {
		t.Errorf("an endpoint token as access token: got %v, want ErrTokenAudience", err)
	}
	tok, _ := iss.AccessToken("")
	c.t = c.t.Add(TokenLifetime)
	if err := iss.ValidateAccess(tok.Value); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("at expiry: got %v, want ErrTokenExpired", err)
	}
}

func TestOpenIssuerKeepsItsKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "token.key")
	a, err := OpenIssuer(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	tok, _ := a.EndpointToken("ep1")
	b, err := OpenIssuer(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.ValidateEndpoint(tok.Value, "ep1"); err != nil {
		t.Fatalf("a token did not survive reopening the key: %v", err)
	}
	if err := os.WriteFile(path, []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenIssuer(path, nil); err == nil {
		t.Fatal("a short key was accepted")
	}
}

func TestPodToken(t *testing.T) {
	iss, err := NewIssuer(make([]byte, 32), nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.PodToken(PodScope{Artifacts: []string{"sha256:a", "", "sha256:b"}, Job: "j1"})
	if err != nil {
		t.Fatal(err)
	}
	if tok.Expiry.Sub(time.Now()) < 300*24*time.Hour {
		t.Errorf("a pod token lasts until %v", tok.Expiry)
	}
	s, err := iss.ValidatePod(tok.Value)
	if err != nil || s.Job != "j1" || len(s.Artifacts) != 2 || s.Artifacts[1] != "sha256:b" {
		t.Fatalf("scope %+v, %v", s, err)
	}
	if err := iss.ValidateAccess(tok.Value); err == nil {
		t.Error("a pod token was accepted as an access token")
	}
	acc, _ := iss.AccessToken("")
	if _, err := iss.ValidatePod(acc.Value); !errors.Is(err, ErrTokenAudience) {
		t.Errorf("an access token as a pod token: %v", err)
	}
}
