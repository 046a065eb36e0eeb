package router

import (
	"net/http"
	"strings"

	"github.com/berthml/berth/internal/auth"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/router/table"
)

// TokenValidator checks the tokens of token endpoints; *auth.Issuer is one.
type TokenValidator interface {
	// ValidateEndpoint checks a token of an aml_token endpoint.
	ValidateEndpoint(tok, endpoint string) error
	// ValidateAccess checks an access token of the admin identity (aad_token).
	ValidateAccess(tok string) error
}

var _ TokenValidator = (*auth.Issuer)(nil)

// HeaderAuthenticate is the header a 401 carries: RFC 6750's
// `Bearer error="invalid_token", error_description="<why>"`.
const HeaderAuthenticate = "WWW-Authenticate"

// authenticate checks the request's credential against the endpoint's auth mode and
// answers 401 itself when it is refused: keys only on key endpoints, the endpoint's
// tokens only on aml_token endpoints, access tokens only on aad_token endpoints, and
// anything, or nothing, on local endpoints (AuthNone).
func (r *Router) authenticate(w http.ResponseWriter, req *http.Request, ep *table.Endpoint) bool {
	if ep.AuthMode == table.AuthNone {
		return true
	}
	cred, ok := auth.BearerToken(req)
	fix := "berth online-endpoint get-credentials -n " + ep.Name
	switch ep.AuthMode {
	case table.AuthAMLToken, table.AuthAADToken:
		if ep.AuthMode == table.AuthAADToken {
			fix = "berth account get-access-token --resource " + auth.MLResource + " --query accessToken -o tsv"
		}
		var err error
		switch {
		case !ok:
			return unauthorized(w, "", "the request has no Authorization header", "endpoint "+ep.Name+" uses auth_mode "+ep.AuthMode+": send Authorization: Bearer <accessToken> with the token from `"+fix+"`")
		case !auth.LooksLikeToken(cred):
			return unauthorized(w, "invalid_token", "a key was sent to a token endpoint", "endpoint "+ep.Name+" uses auth_mode "+ep.AuthMode+" and accepts no keys: send the accessToken from `"+fix+"`")
		case r.tokens == nil:
			return unauthorized(w, "invalid_token", "this server validates no tokens", "endpoint "+ep.Name+" uses auth_mode "+ep.AuthMode+" but the router has no token validator")
		case ep.AuthMode == table.AuthAMLToken:
			err = r.tokens.ValidateEndpoint(cred, ep.Name)
		default:
			err = r.tokens.ValidateAccess(cred)
		}
		if err != nil {
			return unauthorized(w, "invalid_token", err.Error(), "endpoint "+ep.Name+" refused the token: "+err.Error()+"; get a new one with `"+fix+"`")
		}
		return true
	default:
		if ok && auth.Match(cred, ep.Keys...) {
			return true
		}
		if ok && auth.LooksLikeToken(cred) {
			return unauthorized(w, "invalid_token", "a token was sent to a key endpoint", "endpoint "+ep.Name+" uses auth_mode key and accepts no tokens: send its primaryKey or secondaryKey from `"+fix+"`")
		}
		code := "invalid_token"
		if !ok {
			code = ""
		}
		return unauthorized(w, code, "missing or wrong key", "missing or wrong key: send Authorization: Bearer <key> ("+fix+")")
	}
}

// unauthorized answers 401 with the reason in WWW-Authenticate (code "" when the
// request carried no credential, as RFC 6750 asks) and the fix in the JSON body.
func unauthorized(w http.ResponseWriter, code, reason, msg string) bool {
	v := `Bearer realm="berth"`
	if code != "" {
		v += `, error="` + code + `", error_description="` + strings.ReplaceAll(reason, `"`, "'") + `"`
	}
	w.Header().Set(HeaderAuthenticate, v)
	writeError(w, http.StatusUnauthorized, diag.Unauthorized, msg)
	return false
}
