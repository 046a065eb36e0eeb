package auth

import (
	"net/http/httptest"
	"testing"
)

func TestKeysAndMatch(t *testing.T) {
	a, err := NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewKey()
	if a == b || len(a) != 43 {
		t.Fatalf("keys %q %q", a, b)
	}
	if !Match(a, a, b) || !Match(b, a, b) || Match("x", a, b) || Match("", "", "") || Match(a[:10], a) {
		t.Fatal("Match is wrong")
	}
}

func TestBearerToken(t *testing.T) {
	for h, want := range map[string]string{"Bearer abc": "abc", "bearer abc": "abc", "Basic abc": "", "": "", "Bearer ": ""} {
		r := httptest.NewRequest("GET", "/", nil)
		if h != "" {
			r.Header.Set("Authorization", h)
		}
		got, ok := BearerToken(r)
		if got != want || ok != (want != "") {
			t.Errorf("%q: got %q %v", h, got, ok)
		}
	}
}

func TestSealer(t *testing.T) {
	path := t.TempDir() + "/secret.key"
	s, err := OpenSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("hunter2"))
	if err != nil || string(sealed) == "hunter2" {
		t.Fatalf("seal: %v", err)
	}
	again, err := OpenSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	plain, err := again.Open(sealed)
	if err != nil || string(plain) != "hunter2" {
		t.Fatalf("open with the same key file: %q %v", plain, err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := again.Open(sealed); err == nil {
		t.Fatal("a tampered secret opened")
	}
}
