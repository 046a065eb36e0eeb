package server

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/controller"
	"github.com/berthml/berth/internal/instance"
)

// Config is the configuration of `berth serve`.
type Config struct {
	Addr           string
	DataDir        string
	Python         string
	LogLevel       string
	MaxRequestBody string
	EndpointRPS    string
	QuotaCores     string
	QuotaMemory    string
	MaxEndpoints   string
	InstanceTypes  string
	EnvStrict      string
}

// setting is one row of the configuration table: it renders the flag, its help, the
// environment variable and the startup log from the same place.
type setting struct {
	name, env, doc string
	def            func() string
	field          func(*Config) *string
}

func settings() []setting {
	return []setting{
		{"addr", "BERTH_ADDR", "address the control plane and the scoring router listen on (port 0 picks a free port)",
			func() string { return "127.0.0.1:5555" }, func(c *Config) *string { return &c.Addr }},
		{"data-dir", "BERTH_DATA_DIR", "folder for metadata (berth.db), artifacts, instances and server.json",
			DefaultDataDir, func(c *Config) *string { return &c.DataDir }},
		{"python", "BERTH_PYTHON", "Python interpreter that runs score.py (Debian packages install into /usr/bin/python3)",
			func() string { return instance.DefaultPython }, func(c *Config) *string { return &c.Python }},
		{"max-request-body", "BERTH_MAX_REQUEST_BODY", "largest scoring request body in bytes; larger ones get 413",
			func() string { return strconv.Itoa(100 << 20) }, func(c *Config) *string { return &c.MaxRequestBody }},
		{"endpoint-rps", "BERTH_ENDPOINT_RPS", "requests/s each endpoint accepts before 429 rate_limited (Azure's limit is 500; 0 disables)",
			func() string { return "500" }, func(c *Config) *string { return &c.EndpointRPS }},
		{"quota-cores", "BERTH_QUOTA_CORES", "cores all deployments together may ask for through instance_type × instance_count (0 = no limit)",
			func() string { return "0" }, func(c *Config) *string { return &c.QuotaCores }},
		{"quota-memory", "BERTH_QUOTA_MEMORY", "memory in bytes all deployments together may ask for (0 = no limit)",
			func() string { return "0" }, func(c *Config) *string { return &c.QuotaMemory }},
		{"max-endpoints", "BERTH_MAX_ENDPOINTS", "most endpoints this server holds (Azure allows 100 per region)",
			func() string { return "100" }, func(c *Config) *string { return &c.MaxEndpoints }},
		{"instance-types", "BERTH_INSTANCE_TYPES", "YAML file of extra or changed instance types: a list of {name, cores, memory_bytes, disk_bytes}",
			func() string { return "" }, func(c *Config) *string { return &c.InstanceTypes }},
		{"env-strict", "BERTH_ENV_STRICT", "true: a conda version pin the installed package does not meet fails the build (ImageBuildFailure); false: a warning",
			func() string { return "false" }, func(c *Config) *string { return &c.EnvStrict }},
		{"log-level", "BERTH_LOG_LEVEL", "server log level: debug, info, warn, error",
			func() string { return "info" }, func(c *Config) *string { return &c.LogLevel }},
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

// bindFlags registers one flag per setting; the flag default is the env value when set.
func bindFlags(cmd *cobra.Command, cfg *Config) {
	for _, s := range settings() {
		def := s.def()
		if v, ok := os.LookupEnv(s.env); ok && v != "" {
			def = v
		}
		cmd.Flags().StringVar(s.field(cfg), s.name, def, fmt.Sprintf("%s (env %s)", s.doc, s.env))
	}
}

// logAttrs lists every setting for the startup log.
func (c *Config) logAttrs() []any {
	var out []any
	for _, s := range settings() {
		out = append(out, s.name, *s.field(c))
	}
	return out
}

// limits parses the numeric settings.
func (c *Config) limits() (maxBody int64, rps float64, err error) {
	maxBody, err = strconv.ParseInt(c.MaxRequestBody, 10, 64)
	if err != nil || maxBody <= 0 {
		return 0, 0, fmt.Errorf("--max-request-body %q: give a number of bytes, e.g. 104857600", c.MaxRequestBody)
	}
	rps, err = strconv.ParseFloat(c.EndpointRPS, 64)
	if err != nil || rps < 0 {
		return 0, 0, fmt.Errorf("--endpoint-rps %q: give requests per second, or 0 for no limit", c.EndpointRPS)
	}
	if rps == 0 {
		rps = -1 // the router reads < 0 as "no limit"
	}
	return maxBody, rps, nil
}

// quota parses the quota settings and the instance type table.
func (c *Config) quota() (controller.Quota, map[string]controller.InstanceType, error) {
	var q controller.Quota
	var err error
	if q.Cores, err = strconv.ParseFloat(c.QuotaCores, 64); err != nil || q.Cores < 0 {
		return q, nil, fmt.Errorf("--quota-cores %q: give a number of cores, or 0 for no limit", c.QuotaCores)
	}
	if q.MemoryBytes, err = strconv.ParseInt(c.QuotaMemory, 10, 64); err != nil || q.MemoryBytes < 0 {
		return q, nil, fmt.Errorf("--quota-memory %q: give a number of bytes, or 0 for no limit", c.QuotaMemory)
	}
	if q.MaxEndpoints, err = strconv.Atoi(c.MaxEndpoints); err != nil || q.MaxEndpoints < 0 {
		return q, nil, fmt.Errorf("--max-endpoints %q: give a whole number, or 0 for no limit", c.MaxEndpoints)
	}
	types := controller.DefaultInstanceTypes()
	if c.InstanceTypes != "" {
		b, err := os.ReadFile(c.InstanceTypes)
		if err != nil {
			return q, nil, fmt.Errorf("--instance-types: %w", err)
		}
		var extra []controller.InstanceType
		if err := yaml.Unmarshal(b, &extra); err != nil {
			return q, nil, fmt.Errorf("--instance-types %s: %w (write a list of {name, cores, memory_bytes, disk_bytes})", c.InstanceTypes, err)
		}
		for _, t := range extra {
			if t.Name == "" || t.Cores <= 0 || t.MemoryBytes <= 0 {
				return q, nil, fmt.Errorf("--instance-types %s: %q needs a name, cores > 0 and memory_bytes > 0", c.InstanceTypes, t.Name)
			}
			types[strings.ToLower(t.Name)] = t
		}
	}
	return q, types, nil
}

func (c *Config) level() (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToLower(c.LogLevel))); err != nil {
		return 0, fmt.Errorf("--log-level %q: use debug, info, warn or error", c.LogLevel)
	}
	return l, nil
}
