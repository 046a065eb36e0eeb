package spec

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Data collector limits and defaults, as Azure documents them.
const (
	// DefaultSamplingRate is data_collector.sampling_rate when unset: every request.
	DefaultSamplingRate = 1.0
	// DefaultRollingRate is data_collector.rolling_rate when unset: one folder per hour.
	DefaultRollingRate = "Hour"
	// MaxCustomCollections bounds the Collector collections besides request and response.
	MaxCustomCollections = 5
	// CollectionRequest and CollectionResponse are the reserved collections of payload
	// logging: the scoring request's body and its answer.
	CollectionRequest  = "request"
	CollectionResponse = "response"
)

// RollingRates are the values of data_collector.rolling_rate, in Azure's spelling.
func RollingRates() []string { return []string{"Minute", "Hour", "Day", "Month", "Year"} }

var collectionNameRE = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)

// DataCollector is data_collector: payload logging (the reserved collections request
// and response) and custom logging (Collector(name=...) in score.py) of an online
// deployment.
type DataCollector struct {
	SamplingRate   float64                `json:"sampling_rate,omitempty" yaml:"sampling_rate"`
	RollingRate    string                 `json:"rolling_rate,omitempty" yaml:"rolling_rate"`
	Collections    map[string]*Collection `json:"collections,omitempty" yaml:"collections"`
	RequestLogging *RequestLogging        `json:"request_logging,omitempty" yaml:"request_logging"`
}

// Collection is data_collector.collections.<name>.
type Collection struct {
	Enabled Toggle          `json:"enabled" yaml:"enabled"`
	Data    *CollectionData `json:"data,omitempty" yaml:"data"`
}

// CollectionData is where Azure registers a collection as a data asset.
type CollectionData struct {
	Name    string `json:"name,omitempty" yaml:"name"`
	Path    string `json:"path,omitempty" yaml:"path"`
	Version string `json:"version,omitempty" yaml:"version"`
}

// RequestLogging is data_collector.request_logging: the request headers payload
// logging keeps besides the body.
type RequestLogging struct {
	CaptureHeaders []string `json:"capture_headers,omitempty" yaml:"capture_headers"`
}

// Toggle is a boolean that also reads the quoted 'True' and 'False' Azure's samples
// write (enabled: 'True').
type Toggle bool

// parseToggle reads true/false in any case, as Azure's schema does.
func parseToggle(s string) (Toggle, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true":
		return true, true
	case "false":
		return false, true
	}
	return false, false
}

// UnmarshalYAML accepts true, false, 'True' and 'False'.
func (t *Toggle) UnmarshalYAML(n *yaml.Node) error {
	v, ok := parseToggle(n.Value)
	if n.Kind != yaml.ScalarNode || !ok {
		return fmt.Errorf("line %d: must be true or false, got %s", n.Line, describe(n))
	}
	*t = v
	return nil
}

// UnmarshalJSON accepts a boolean or the strings "True" and "False".
func (t *Toggle) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) != nil {
		s = string(b)
	}
	v, ok := parseToggle(s)
	if !ok {
		return fmt.Errorf("must be true or false, got %s", b)
	}
	*t = v
	return nil
}

// Enabled lists the names of the enabled collections, sorted.
func (dc *DataCollector) Enabled() []string {
	if dc == nil {
		return nil
	}
	var out []string
	for name, c := range dc.Collections {
		if c != nil && bool(c.Enabled) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// defaults fills sampling_rate, rolling_rate and each collection's data asset as Azure
// does: <endpoint>-<deployment>-<collection>, version 1, under the workspace blob store.
func (dc *DataCollector) defaults(endpoint, deployment string) {
	if dc.SamplingRate == 0 {
		dc.SamplingRate = DefaultSamplingRate
	}
	if dc.RollingRate == "" {
		dc.RollingRate = DefaultRollingRate
	}
	for _, r := range RollingRates() {
		if strings.EqualFold(dc.RollingRate, r) {
			dc.RollingRate = r
		}
	}
	for name, c := range dc.Collections {
		if c == nil {
			c = &Collection{}
			dc.Collections[name] = c
		}
		if c.Data == nil {
			c.Data = &CollectionData{}
		}
		if c.Data.Name == "" {
			c.Data.Name = endpoint + "-" + deployment + "-" + name
		}
		if c.Data.Path == "" {
			c.Data.Path = "azureml://datastores/workspaceblobstore/paths/modelDataCollector/" + endpoint + "/" + deployment + "/" + name
		}
		if c.Data.Version == "" {
			c.Data.Version = "1"
		}
	}
}

// validate adds every problem of a defaulted data_collector.
func (dc *DataCollector) validate(p *problems) {
	const f = "data_collector."
	if r := dc.SamplingRate; math.IsNaN(r) || r <= 0 || r > 1 {
		p.add(f+"sampling_rate", "must be greater than 0 and at most 1 (the share of requests collected), got %g", r)
	}
	if !contains(RollingRates(), dc.RollingRate) {
		p.add(f+"rolling_rate", "must be one of %s, got %q", strings.Join(RollingRates(), ", "), dc.RollingRate)
	}
	custom := 0
	for name, c := range dc.Collections {
		if !collectionNameRE.MatchString(name) {
			p.add(f+"collections."+name, "a collection name is a folder name: letters, digits, _, . and - (at most 128, not starting with . or -), got %q", name)
		}
		if name != CollectionRequest && name != CollectionResponse {
			custom++
		}
		if v := c.Data.Version; v != "" && strings.ContainsAny(v, "/\\: ") {
			p.add(f+"collections."+name+".data.version", "must be a version such as 1, got %q", v)
		}
	}
	if custom > MaxCustomCollections {
		p.add(f+"collections", "may hold at most %d custom collections besides request and response, got %d: collect fewer DataFrames, or put several columns in one", MaxCustomCollections, custom)
	}
	if rl := dc.RequestLogging; rl != nil {
		for i, h := range rl.CaptureHeaders {
			field := fmt.Sprintf("%srequest_logging.capture_headers.%d", f, i)
			switch {
			case h == "" || strings.ContainsAny(h, " :\t\r\n"):
				p.add(field, "must be a header name such as x-ms-client-request-id, got %q", h)
			case contains(credentialHeaders(), strings.ToLower(h)):
				p.add(field, "%s carries credentials (an endpoint key, a token or a session cookie), which payload logging would write in plain text to the collection files: remove it from capture_headers", h)
			}
		}
	}
}

// credentialHeaders are the request headers, in lower case, that carry a key, a token
// or a session: request_logging never captures them.
func credentialHeaders() []string {
	return []string{"authorization", "proxy-authorization", "cookie"}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// warnings lists what a defaulted data_collector asks for that Berth does differently.
func (dc *DataCollector) warnings(deploymentType string) []string {
	if dc == nil {
		return nil
	}
	var w []string
	if len(dc.Enabled()) == 0 {
		w = append(w, "data_collector: no collection is enabled, so nothing is collected, in Azure as in Berth (a collection is off unless it says enabled: true): "+
			"add collections: {model_inputs: {enabled: 'True'}, model_outputs: {enabled: 'True'}}")
	}
	if deploymentType == "kubernetes" && len(dc.Enabled()) > 0 {
		w = append(w, "data_collector: has no effect on a Kubernetes compute (its pods do not write to berth serve's data directory); Berth keeps it in the stored spec for Azure")
	}
	return w
}
