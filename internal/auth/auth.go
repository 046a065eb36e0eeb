// Package auth owns endpoint keys (minting them, reading bearer tokens, comparing them
// in constant time), signed tokens (aml_token endpoints, access tokens for the admin
// identity) and the credential sealer.
package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"strings"
)

// NewKey returns a new random key: 32 bytes, URL-safe base64 without padding.
func NewKey() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// Match reports whether got equals one of the non-empty keys. Every key is compared,
// each in constant time, so timing tells nothing about which key matched or how much.
func Match(got string, keys ...string) bool {
	ok := 0
	for _, k := range keys {
		if k == "" {
			continue
		}
		ok |= subtle.ConstantTimeCompare([]byte(got), []byte(k))
	}
	return ok == 1 && got != ""
}

// BearerToken returns the token of an "Authorization: Bearer <token>" header.
func BearerToken(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	const prefix = "bearer "
	if len(h) <= len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	return strings.TrimSpace(h[len(prefix):]), true
}
