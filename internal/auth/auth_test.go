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
