package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/instance"
	"github.com/berthml/berth/internal/quota"
	"github.com/berthml/berth/internal/spec"
)

// Config is the typed configuration of `berth serve`. NewServeCommand fills it from the
// settings table (default, then environment variable, then flag); New uses it as given.
type Config struct {
	// Addr is the host:port the control plane and the scoring router listen on; port 0
	// picks a free port.
	Addr string
	// DataDir holds berth.db, artifacts, instances and server.json; New creates it.
	DataDir string
	// Python is the interpreter that runs score.py.
	Python string
	// PythonSource says where Python came from: "--python", "BERTH_PYTHON", or "" for
	// the default (python3 on PATH).
	PythonSource string
	// LogLevel is the lowest level the server logs.
	LogLevel slog.Level
	// LogOutput receives the server's text log; nil means os.Stderr.
	LogOutput io.Writer
	// MaxRequestBody is the largest scoring request body in bytes; larger ones get 413.
	// 0 leaves the router's own default.
	MaxRequestBody int64
	// EndpointRPS is the rate limit of each endpoint in requests/s; 0 means no limit.
	EndpointRPS float64
	// QuotaCores is the number of cores all deployments together may ask for through
	// instance_type × instance_count; 0 means no limit.
	QuotaCores float64
	// QuotaMemory is the memory in bytes all deployments together may ask for; 0 means
	// no limit.
	QuotaMemory int64
	// MaxEndpoints is the most endpoints the server holds; 0 means no limit.
	MaxEndpoints int
	// InstanceTypes maps lower-case instance type names to their sizes; nil means
	// quota.DefaultInstanceTypes().
	InstanceTypes map[string]quota.InstanceType
	// EnvStrict makes a conda version pin that the installed package does not meet fail
	// the environment build (ImageBuildFailure) instead of logging a warning.
	EnvStrict bool
	// MaxConnections is the most client connections open at once; at the cap the
	// longest-idle connection is closed to make room for a new one.
	MaxConnections int
	// PublicURL is the base URL of scoring_uri and openapi_uri; "" means the listen URL
	// (with this machine's hostname for a wildcard address).
	PublicURL string
	// TLSCert and TLSKey are PEM files; both set serves HTTPS.
	TLSCert, TLSKey string
	// TLS serves HTTPS with a self-signed certificate kept in <data-dir>/tls.
	TLS bool
	// MetricsAddr is a loopback host:port of a second listener that serves only GET
	// /metrics without a token; "" opens none (/metrics on Addr needs the admin token).
	MetricsAddr string
	// OTLPEndpoint is the base URL of an OTLP/HTTP collector that receives traces; ""
	// traces nothing.
	OTLPEndpoint string
}

// SettingError is a configuration value that does not parse. Err says what is wrong and
// what to write instead.
type SettingError struct {
	// Flag is the setting's flag name, without dashes.
	Flag string
	// Env is the environment variable the value came from; "" when it came from the
	// flag or the default.
	Env string
	// Value is the text that did not parse.
	Value string
	Err   error
}

func (e *SettingError) Error() string {
	msg := fmt.Sprintf("--%s %q: %v", e.Flag, e.Value, e.Err)
	if e.Env != "" {
		msg += " (from " + e.Env + ")"
	}
	return msg
}

func (e *SettingError) Unwrap() error { return e.Err }

// setting is one row of the configuration table: the same row renders the flag and its
// help, names the environment variable, holds the default and the parser, and renders
// the typed value in the startup log.
type setting struct {
	name, env, def, doc string
	bind                binder
}

// binder parses a setting's text into its Config field and reads the field back for the log.
type binder interface {
	set(c *Config, raw string) error
	get(c *Config) any
}

type bind[T any] struct {
	field func(*Config) *T
	parse func(string) (T, error)
	show  func(T) any // nil logs the value itself
}

func (b bind[T]) set(c *Config, raw string) error {
	v, err := b.parse(raw)
	if err != nil {
		return err
	}
	*b.field(c) = v
	return nil
}

func (b bind[T]) get(c *Config) any {
	if b.show != nil {
		return b.show(*b.field(c))
	}
	return *b.field(c)
}

// to binds a Config field to its parser.
func to[T any](field func(*Config) *T, parse func(string) (T, error)) binder {
	return bind[T]{field: field, parse: parse}
}

// settings is the configuration table of `berth serve`. Each default is written here
// and nowhere else.
func settings() []setting {
	return []setting{
		{"addr", "BERTH_ADDR", "127.0.0.1:5555", "address the control plane and the scoring router listen on (port 0 picks a free port)",
			to(func(c *Config) *string { return &c.Addr }, nonEmpty)},
		{"data-dir", "BERTH_DATA_DIR", DefaultDataDir(), "folder for metadata (berth.db), artifacts, instances and server.json",
			to(func(c *Config) *string { return &c.DataDir }, nonEmpty)},
		{"python", "BERTH_PYTHON", instance.DefaultPython, "Python interpreter that runs score.py (Debian packages install into /usr/bin/python3)",
			to(func(c *Config) *string { return &c.Python }, nonEmpty)},
		{"max-request-body", "BERTH_MAX_REQUEST_BODY", "100Mi", "largest scoring request body in bytes (104857600) or as a quantity (100Mi, 1G); larger ones get 413",
			to(func(c *Config) *int64 { return &c.MaxRequestBody }, positiveBytes)},
		{"endpoint-rps", "BERTH_ENDPOINT_RPS", "500", "requests/s each endpoint accepts before 429 rate_limited (Azure's limit is 500; 0 disables)",
			to(func(c *Config) *float64 { return &c.EndpointRPS }, limitOf("requests per second"))},
		{"quota-cores", "BERTH_QUOTA_CORES", "0", "cores all deployments together may ask for through instance_type × instance_count (0 = no limit)",
			to(func(c *Config) *float64 { return &c.QuotaCores }, limitOf("a number of cores"))},
		{"quota-memory", "BERTH_QUOTA_MEMORY", "0", "memory all deployments together may ask for, in bytes or as a quantity (512Mi, 2Gi, 1G) (0 = no limit)",
			to(func(c *Config) *int64 { return &c.QuotaMemory }, bytesOrZero)},
		{"max-endpoints", "BERTH_MAX_ENDPOINTS", "100", "most endpoints this server holds (Azure allows 100 per region; 0 = no limit)",
			to(func(c *Config) *int { return &c.MaxEndpoints }, wholeOrZero)},
		{"instance-types", "BERTH_INSTANCE_TYPES", "", "YAML file of extra or changed instance types: a list of {name, cores, memory_bytes, disk_bytes}",
			bind[map[string]quota.InstanceType]{field: func(c *Config) *map[string]quota.InstanceType { return &c.InstanceTypes },
				parse: instanceTypes, show: typeNames}},
		{"env-strict", "BERTH_ENV_STRICT", "false", "true: a conda version pin the installed package does not meet fails the build (ImageBuildFailure); false: a warning",
			to(func(c *Config) *bool { return &c.EnvStrict }, boolean)},
		{"max-connections", "BERTH_MAX_CONNECTIONS", "10000", "most client connections open at once; at the cap the longest-idle one is closed for a new one (keep under half of ulimit -n)",
			to(func(c *Config) *int { return &c.MaxConnections }, positiveWhole)},
		{"public-url", "BERTH_PUBLIC_URL", "", "base URL clients reach this server at, used in scoring_uri and openapi_uri (default: the listen URL; the hostname for 0.0.0.0)",
			to(func(c *Config) *string { return &c.PublicURL }, publicURL)},
		{"tls-cert", "BERTH_TLS_CERT", "", "PEM certificate (chain) file; with --tls-key the server speaks HTTPS",
			to(func(c *Config) *string { return &c.TLSCert }, anyString)},
		{"tls-key", "BERTH_TLS_KEY", "", "PEM private key file of --tls-cert",
			to(func(c *Config) *string { return &c.TLSKey }, anyString)},
		{"tls", "BERTH_TLS", "false", "true: serve HTTPS with a self-signed certificate kept in <data-dir>/tls (clients must trust <data-dir>/tls/cert.pem, e.g. SSL_CERT_FILE)",
			to(func(c *Config) *bool { return &c.TLS }, boolean)},
		{"metrics-addr", "BERTH_METRICS_ADDR", "", "loopback address (127.0.0.1:9464) of a listener serving only GET /metrics without a token, for a local Prometheus (empty: none; /metrics on --addr needs the admin token)",
			to(func(c *Config) *string { return &c.MetricsAddr }, loopbackAddr)},
		{"otlp-endpoint", "BERTH_OTLP_ENDPOINT", os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT"), "base URL of an OTLP/HTTP collector (http://127.0.0.1:4318) that receives traces at /v1/traces (default: OTEL_EXPORTER_OTLP_ENDPOINT; empty: no tracing)",
			to(func(c *Config) *string { return &c.OTLPEndpoint }, httpURL)},
		{"log-level", "BERTH_LOG_LEVEL", "info", "server log level: debug, info, warn, error",
			to(func(c *Config) *slog.Level { return &c.LogLevel }, level)},
	}
}

// DefaultDataDir is ~/.berth.
func DefaultDataDir() string {
	home, err := os.UserHomeDir()
	if err != nil {
		return ".berth"
	}
	return filepath.Join(home, ".berth")
}

// loadConfig resolves every setting of the table: its default, replaced by its
// environment variable when that is set and not empty, replaced by its flag when the
// flag was given. It reports every bad value at once, each as a *SettingError.
func loadConfig(lookupEnv, flag func(name string) (string, bool)) (Config, error) {
	var c Config
	var errs []error
	for _, s := range settings() {
		raw, from := s.def, ""
		if v, ok := lookupEnv(s.env); ok && v != "" {
			raw, from = v, s.env
		}
		flagged := false
		if v, ok := flag(s.name); ok {
			raw, from, flagged = v, "", true
		}
		if s.name == "python" {
			c.PythonSource = from
			if flagged {
				c.PythonSource = "--python"
			}
		}
		if err := s.bind.set(&c, raw); err != nil {
			errs = append(errs, &SettingError{Flag: s.name, Env: from, Value: raw, Err: err})
		}
	}
	return c, errors.Join(append(errs, c.checkTLS()...)...)
}

// checkTLS checks the TLS settings against each other: a certificate needs its key, and
// --tls generates its own.
func (c *Config) checkTLS() []error {
	var errs []error
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, &SettingError{Flag: "tls-cert", Value: c.TLSCert,
			Err: errors.New("--tls-cert and --tls-key go together: give both or neither")})
	}
	if c.TLS && c.TLSCert != "" {
		errs = append(errs, &SettingError{Flag: "tls", Value: "true",
			Err: errors.New("--tls generates a certificate; leave it out when giving --tls-cert and --tls-key")})
	}
	return errs
}

// logAttrs lists every setting's typed value for the startup log.
func (c *Config) logAttrs() []any {
	var out []any
	for _, s := range settings() {
		out = append(out, s.name, s.bind.get(c))
	}
	return out
}

func nonEmpty(s string) (string, error) {
	if s == "" {
		return "", errors.New("want a value, not an empty string")
	}
	return s, nil
}

func boolean(s string) (bool, error) {
	b, err := strconv.ParseBool(s)
	if err != nil {
		return false, errors.New("want true or false")
	}
	return b, nil
}

func level(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, errors.New("want debug, info, warn or error")
	}
	return l, nil
}

// limitOf parses a non-negative number where 0 means no limit.
func limitOf(what string) func(string) (float64, error) {
	return func(s string) (float64, error) {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || f < 0 || math.IsNaN(f) || math.IsInf(f, 0) {
			return 0, fmt.Errorf("want %s, or 0 for no limit", what)
		}
		return f, nil
	}
}

func anyString(s string) (string, error) { return s, nil }

// loopbackAddr accepts "" or a host:port whose host is a loopback address or localhost:
// the metrics listener has no token, so it must not be reachable from other machines.
func loopbackAddr(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || port == "" {
		return "", errors.New("want a loopback host:port, such as 127.0.0.1:9464")
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return "", errors.New("the metrics listener has no token, so it listens only on loopback: use 127.0.0.1:PORT or [::1]:PORT, or scrape /metrics on --addr with the admin token")
	}
	return s, nil
}

// httpURL accepts "" or an http(s) URL with a host.
func httpURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", errors.New("want an http(s) URL such as http://127.0.0.1:4318")
	}
	return s, nil
}

func positiveWhole(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, errors.New("want a whole number above 0")
	}
	return n, nil
}

func wholeOrZero(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, errors.New("want a whole number, or 0 for no limit")
	}
	return n, nil
}

// quantityBytes reads a byte count: plain bytes or a Kubernetes quantity (512Mi, 2Gi, 1G).
func quantityBytes(s string) (int64, bool) {
	f, err := spec.ParseQuantity(s)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || f != math.Trunc(f) || f >= math.MaxInt64 {
		return 0, false
	}
	return int64(f), true
}

func positiveBytes(s string) (int64, error) {
	n, ok := quantityBytes(s)
	if !ok || n <= 0 {
		return 0, errors.New("want a number of bytes above 0, such as 104857600, 100Mi or 1G")
	}
	return n, nil
}

func bytesOrZero(s string) (int64, error) {
	n, ok := quantityBytes(s)
	if !ok {
		return 0, errors.New("want a number of bytes, such as 17179869184, 512Mi or 16Gi, or 0 for no limit")
	}
	return n, nil
}

// instanceTypes returns the default instance types, changed and extended by the YAML
// file at path ("" = none).
func instanceTypes(path string) (map[string]quota.InstanceType, error) {
	types := quota.DefaultInstanceTypes()
	if path == "" {
		return types, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read the instance types file: %w", err)
	}
	var extra []quota.InstanceType
	if err := yaml.Unmarshal(b, &extra); err != nil {
		return nil, fmt.Errorf("%w (write a list of {name, cores, memory_bytes, disk_bytes})", err)
	}
	for _, t := range extra {
		if t.Name == "" || t.Cores <= 0 || t.MemoryBytes <= 0 {
			return nil, fmt.Errorf("instance type %q needs a name, cores > 0 and memory_bytes > 0", t.Name)
		}
		types[strings.ToLower(t.Name)] = t
	}
	return types, nil
}

// typeNames renders the instance type table in the startup log as its sorted names.
func typeNames(types map[string]quota.InstanceType) any {
	names := make([]string, 0, len(types))
	for _, t := range types {
		names = append(names, t.Name)
	}
	sort.Strings(names)
	return strings.Join(names, ",")
}
