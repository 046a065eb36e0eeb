package auth

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Token lifetimes. Azure does not document the lifetime of aml_token tokens; Berth
// follows the behaviour spec's choice: one hour, refresh after half of it.
const (
	TokenLifetime     = time.Hour
	TokenRefreshAfter = TokenLifetime / 2
	// TokenType is the tokenType Azure prints for every token.
	TokenType = "Bearer"
	// DefaultResource is the resource `az account get-access-token` asks for when none
	// is given (Azure Resource Manager).
	DefaultResource = "https://management.core.windows.net/"
	// MLResource is the resource of Azure ML data-plane tokens (aad_token endpoints).
	MLResource = "https://ml.azure.com"
	// AdminSubject is the subject of access tokens: the server's admin identity.
	AdminSubject = "berth-admin"

	issuer         = "berth"
	endpointPrefix = "berth-endpoint:"
	// podAudience is the audience of the tokens of Berth's pods on Kubernetes computes.
	podAudience = "berth-pod"
	// PodTokenLifetime is how long a pod's token lasts: pods of a deployment start
	// long after it was applied (a scale-up, a node replaced), and each apply mints a
	// new one.
	PodTokenLifetime = 365 * 24 * time.Hour
)

// Token validation failures. Validate* wrap one of them with the details.
var (
	// ErrTokenMalformed is a credential that is not a token Berth could have issued (a key, say).
	ErrTokenMalformed = errors.New("the credential is not a token issued by Berth")
	// ErrTokenSignature is a token whose signature does not verify: forged or from another server.
	ErrTokenSignature = errors.New("the token's signature is not valid: it was not issued by this server")
	// ErrTokenExpired is a token past its expiry.
	ErrTokenExpired = errors.New("the token has expired")
	// ErrTokenAudience is a token issued for something else (another endpoint, another resource).
	ErrTokenAudience = errors.New("the token was issued for another audience")
)

// Token is a signed token and its times.
type Token struct {
	Value        string
	Expiry       time.Time
	RefreshAfter time.Time
	// Audience is what the token is for: an endpoint's audience or a resource.
	Audience string
}

// Issuer mints and validates HMAC-SHA256 signed JWTs: endpoint tokens (aml_token) and
// access tokens for the server's admin identity (aad_token, control plane).
type Issuer struct {
	key []byte
	now func() time.Time
}

// NewIssuer returns an issuer signing with key (at least 32 bytes). now is the clock
// for issuing and expiry; nil means time.Now.
func NewIssuer(key []byte, now func() time.Time) (*Issuer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("token signing key has %d bytes, want at least 32", len(key))
	}
	if now == nil {
		now = time.Now
	}
	return &Issuer{key: key, now: now}, nil
}

// OpenIssuer reads the signing key at path, creating it (32 random bytes, mode 0600)
// the first time, so tokens survive a restart.
func OpenIssuer(path string, now func() time.Time) (*Issuer, error) {
	key, err := readOrCreateKey(path)
	if err != nil {
		return nil, fmt.Errorf("token key: %w", err)
	}
	iss, err := NewIssuer(key, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: delete it to make a new one (tokens issued before stop working)", path, err)
	}
	return iss, nil
}

// EndpointAudience is the audience of the tokens of one aml_token endpoint.
func EndpointAudience(endpoint string) string { return endpointPrefix + endpoint }

// EndpointToken mints a token for scoring the aml_token endpoint.
func (i *Issuer) EndpointToken(endpoint string) (Token, error) {
	return i.mint(EndpointAudience(endpoint), endpoint, TokenLifetime)
}

// PodScope is what a pod's token allows: reading these artifacts (the model and code
// its storage initializer fetches), and serving as a worker of this batch job.
type PodScope struct {
	Artifacts []string
	Job       string
}

// PodToken mints the token of a deployment's or a batch job's pods: it allows what
// scope says and nothing else, so a token read from the cluster's Secrets cannot run
// the Berth server.
func (i *Issuer) PodToken(scope PodScope) (Token, error) {
	arts := slices.DeleteFunc(slices.Clone(scope.Artifacts), func(a string) bool { return a == "" }) // "": no code, say
	sub := "job=" + scope.Job + ";artifacts=" + strings.Join(arts, ",")
	return i.mint(podAudience, sub, PodTokenLifetime)
}

// ValidatePod checks that tok is a valid, unexpired pod token and returns its scope.
func (i *Issuer) ValidatePod(tok string) (PodScope, error) {
	claims, err := i.claims(tok)
	if err != nil {
		return PodScope{}, err
	}
	if claims.Audience[0] != podAudience {
		return PodScope{}, fmt.Errorf("%w: it is for %s, not a pod's token", ErrTokenAudience, claims.Audience[0])
	}
	var s PodScope
	for _, part := range strings.Split(claims.Subject, ";") {
		k, v, _ := strings.Cut(part, "=")
		switch {
		case k == "job":
			s.Job = v
		case k == "artifacts" && v != "":
			s.Artifacts = strings.Split(v, ",")
		}
	}
	return s, nil
}

// AccessToken mints a token for the admin identity and resource ("" = DefaultResource),
// as `az account get-access-token --resource` does.
func (i *Issuer) AccessToken(resource string) (Token, error) {
	if resource == "" {
		resource = DefaultResource
	}
	return i.mint(resource, AdminSubject, TokenLifetime)
}

func (i *Issuer) mint(aud, sub string, lifetime time.Duration) (Token, error) {
	now := i.now().Truncate(time.Second)
	exp := now.Add(lifetime)
	// A random id makes every token new, even two minted in the same second.
	id, err := NewKey()
	if err != nil {
		return Token{}, err
	}
	claims := jwt.RegisteredClaims{
		ID:        id[:22],
		Issuer:    issuer,
		Subject:   sub,
		Audience:  jwt.ClaimStrings{aud},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(exp),
	}
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(i.key)
	if err != nil {
		return Token{}, fmt.Errorf("sign token: %w", err)
	}
	return Token{Value: s, Expiry: exp, RefreshAfter: now.Add(TokenRefreshAfter), Audience: aud}, nil
}

// ValidateEndpoint checks that tok is a valid, unexpired token of the aml_token endpoint.
func (i *Issuer) ValidateEndpoint(tok, endpoint string) error {
	aud, err := i.parse(tok)
	if err != nil {
		return err
	}
	if aud == EndpointAudience(endpoint) {
		return nil
	}
	if other, ok := strings.CutPrefix(aud, endpointPrefix); ok {
		return fmt.Errorf("%w: it is a token of endpoint %q, not %q", ErrTokenAudience, other, endpoint)
	}
	return fmt.Errorf("%w: it is an access token for %s, not a token of endpoint %q", ErrTokenAudience, aud, endpoint)
}

// ValidateAccess checks that tok is a valid, unexpired access token of the admin
// identity for Azure ML or Azure Resource Manager.
func (i *Issuer) ValidateAccess(tok string) error {
	aud, err := i.parse(tok)
	if err != nil {
		return err
	}
	if ep, ok := strings.CutPrefix(aud, endpointPrefix); ok {
		return fmt.Errorf("%w: it is a token of endpoint %q, not an access token", ErrTokenAudience, ep)
	}
	// Azure ML data-plane tokens and Resource Manager tokens are both accepted: one
	// Berth server is one workspace and its control plane.
	switch normResource(aud) {
	case "https://ml.azure.com", "https://management.azure.com", "https://management.core.windows.net":
		return nil
	}
	return fmt.Errorf("%w: it is for resource %s, want %s", ErrTokenAudience, aud, MLResource)
}

// normResource drops a trailing "/.default" scope suffix and slash.
func normResource(r string) string {
	r = strings.TrimSuffix(r, "/.default")
	return strings.TrimRight(strings.ToLower(r), "/")
}

// parse verifies tok's signature, issuer and expiry and returns its audience.
func (i *Issuer) parse(tok string) (string, error) {
	claims, err := i.claims(tok)
	if err != nil {
		return "", err
	}
	return claims.Audience[0], nil
}

// claims verifies tok's signature, issuer and expiry and returns its claims, which
// name one audience.
func (i *Issuer) claims(tok string) (jwt.RegisteredClaims, error) {
	var claims jwt.RegisteredClaims
	p := jwt.NewParser(jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}), jwt.WithTimeFunc(i.now),
		jwt.WithExpirationRequired(), jwt.WithIssuer(issuer))
	_, err := p.ParseWithClaims(tok, &claims, func(*jwt.Token) (any, error) { return i.key, nil })
	switch {
	case err == nil:
	case errors.Is(err, jwt.ErrTokenMalformed):
		return claims, ErrTokenMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid), errors.Is(err, jwt.ErrTokenUnverifiable):
		return claims, ErrTokenSignature
	case errors.Is(err, jwt.ErrTokenExpired):
		return claims, fmt.Errorf("%w at %s", ErrTokenExpired, claims.ExpiresAt.UTC().Format(time.RFC3339))
	default:
		return claims, fmt.Errorf("%w: %w", ErrTokenMalformed, err)
	}
	if len(claims.Audience) != 1 {
		return claims, fmt.Errorf("%w: it names %d audiences, want 1", ErrTokenAudience, len(claims.Audience))
	}
	return claims, nil
}

// LooksLikeToken reports whether cred has the shape of a JWT (three dot-separated
// parts), so a caller can say "a token was sent where a key is expected".
func LooksLikeToken(cred string) bool { return strings.Count(cred, ".") == 2 }

// ValidateML checks that tok is a valid, unexpired access token of the admin identity
// for the Azure ML data plane (https://ml.azure.com), as batch endpoints' REST
// invocations need: a Resource Manager token is refused, as Azure refuses it.
func (i *Issuer) ValidateML(tok string) error {
	aud, err := i.parse(tok)
	if err != nil {
		return err
	}
	if normResource(aud) == normResource(MLResource) {
		return nil
	}
	return fmt.Errorf("%w: it is for resource %s, want %s", ErrTokenAudience, aud, MLResource)
}
