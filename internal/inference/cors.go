package inference

import (
	"net/http"
	"regexp"
	"sort"
	"strings"
)

// corsMethods are the methods azmlinfsrv allows cross-origin (flask-cors' methods option).
const corsMethods = "GET, POST"

// corsPolicy answers CORS as azmlinfsrv does with AML_CORS_ORIGINS set: flask-cors with
// methods GET and POST and its other options at their defaults (any request header,
// no credentials, no max age, Vary: Origin when the answer depends on the origin).
type corsPolicy struct {
	origins  []string         // as configured; "*" is the pattern ".*", as flask-cors reads it
	patterns []*regexp.Regexp // per origin: the pattern when it looks like a regular expression, else nil
	wildcard bool
	regex    bool // some origin is a pattern
}

// looksLikeRegex is flask-cors' guess that an origin is a regular expression.
func looksLikeRegex(s string) bool { return strings.ContainsAny(s, `*\]?$^[()`) }

func newCORS(origins []string) *corsPolicy {
	c := &corsPolicy{}
	for _, o := range origins {
		if o == "*" {
			o = ".*"
		}
		var re *regexp.Regexp
		if looksLikeRegex(o) {
			// Python's re.match: anchored at the start only. A pattern that does not
			// compile matches nothing, as in flask-cors.
			re, _ = regexp.Compile(`(?i)^(?:` + o + `)`)
			c.regex = true
		}
		c.wildcard = c.wildcard || o == ".*"
		c.origins = append(c.origins, o)
		c.patterns = append(c.patterns, re)
	}
	return c
}

func (c *corsPolicy) allows(origin string) bool {
	for i, o := range c.origins {
		if re := c.patterns[i]; re != nil {
			if re.MatchString(origin) {
				return true
			}
		} else if !looksLikeRegex(o) && strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}

// apply adds the CORS headers to h, the headers of the answer to r, unless the answer
// already carries Access-Control-Allow-Origin (run() set its own).
func (c *corsPolicy) apply(h http.Header, r *http.Request) {
	if h.Get("Access-Control-Allow-Origin") != "" {
		return
	}
	var allow []string
	if origin := r.Header.Get("Origin"); origin != "" {
		if !c.allows(origin) {
			return
		}
		allow = []string{origin}
	} else if c.wildcard {
		allow = []string{"*"}
	} else {
		for _, o := range c.origins {
			if !looksLikeRegex(o) {
				allow = append(allow, o)
			}
		}
		sort.Strings(allow)
	}
	if len(allow) == 0 {
		return
	}
	for _, o := range allow {
		h.Add("Access-Control-Allow-Origin", o)
	}
	if r.Header.Get("Access-Control-Request-Private-Network") == "true" {
		h.Set("Access-Control-Allow-Private-Network", "false")
	}
	if r.Method == http.MethodOptions {
		// flask-cors tests the requested method as a substring of "GET, POST".
		if m := strings.ToUpper(r.Header.Get("Access-Control-Request-Method")); m != "" && strings.Contains(corsMethods, m) {
			if hs := requestedHeaders(r.Header.Get("Access-Control-Request-Headers")); hs != "" {
				h.Set("Access-Control-Allow-Headers", hs)
			}
			h.Set("Access-Control-Allow-Methods", corsMethods)
		}
	}
	if allow[0] != "*" && (len(c.origins) > 1 || len(allow) > 1 || c.regex) {
		h.Add("Vary", "Origin")
	}
}

// requestedHeaders allows every header the preflight asks for, sorted, as flask-cors
// does with allow_headers "*".
func requestedHeaders(list string) string {
	if list == "" {
		return ""
	}
	var hs []string
	for _, h := range strings.Split(list, ",") {
		hs = append(hs, strings.TrimSpace(h))
	}
	sort.Strings(hs)
	return strings.Join(hs, ", ")
}
