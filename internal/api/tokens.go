package api

import (
	"encoding/json"
	"net/http"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/store"
	"github.com/berthml/berth/internal/wire"
)

// authMode is the auth_mode of a stored endpoint (key when its spec sets none).
func authMode(e *store.Endpoint) string {
	var sp struct {
		AuthMode string `json:"auth_mode"`
	}
	if json.Unmarshal(e.Spec, &sp) != nil || sp.AuthMode == "" {
		return spec.DefaultAuthMode
	}
	return sp.AuthMode
}

// credentials are the answer of listkeys: the keys of a key endpoint, a fresh token of
// an aml_token endpoint, or a fresh Azure ML access token for an aad_token endpoint.
func (a *api) credentials(rec *store.Endpoint) (*wire.Credentials, error) {
	if rec.Local {
		return nil, controller.LocalNeedsNoKey(rec.Name)
	}
	mode := authMode(rec)
	if mode == spec.DefaultAuthMode {
		return &wire.Credentials{Keys: &wire.Keys{PrimaryKey: rec.PrimaryKey, SecondaryKey: rec.SecondaryKey}}, nil
	}
	if a.Tokens == nil {
		return nil, diag.New(diag.InternalServerError, "endpoint %s uses auth_mode %s but this server issues no tokens", rec.Name, mode)
	}
	if mode == "aad_token" {
		tok, err := a.Tokens.AccessToken(auth.MLResource)
		if err != nil {
			return nil, err
		}
		return &wire.Credentials{EndpointToken: &wire.EndpointToken{AccessToken: tok.Value, ExpiryTimeUTC: tok.Expiry.Unix(), TokenType: auth.TokenType}}, nil
	}
	tok, err := a.Tokens.EndpointToken(rec.Name)
	if err != nil {
		return nil, err
	}
	return &wire.Credentials{EndpointToken: &wire.EndpointToken{AccessToken: tok.Value, ExpiryTimeUTC: tok.Expiry.Unix(),
		RefreshAfterTimeUTC: tok.RefreshAfter.Unix(), TokenType: auth.TokenType}}, nil
}

// accessToken serves POST /token: an access token of the admin identity, as
// `az account get-access-token` prints it.
func (a *api) accessToken(w http.ResponseWriter, r *http.Request) {
	var body wire.TokenRequest
	if err := decode(r, &body); err != nil {
		writeError(w, err)
		return
	}
	if a.Tokens == nil {
		writeError(w, diag.New(diag.InternalServerError, "this server issues no access tokens"))
		return
	}
	tok, err := a.Tokens.AccessToken(body.Resource)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, wire.AccessToken{
		AccessToken: tok.Value, ExpiresOn: tok.Expiry.Local().Format(wire.ExpiresOnLayout), ExpiresOnUnix: tok.Expiry.Unix(),
		Subscription: wire.LocalSubscription, Tenant: wire.LocalTenant, TokenType: auth.TokenType,
	})
}
