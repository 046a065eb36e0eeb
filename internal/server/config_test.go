package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/berthml/berth/internal/quota"
)

// runServe builds `berth serve` with only the given environment variables of the table
// set, runs it with args, and returns the Config it would serve with.
func runServe(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	for _, s := range settings() {
		t.Setenv(s.env, "") // empty reads as unset: the test machine's own BERTH_* do not leak in
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	var got Config
	ran := false
	cmd := newServeCommand(func(_ context.Context, cfg Config) error {
		got, ran = cfg, true
		return nil
	})
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if err == nil && !ran {
		t.Fatal("serve returned no error but did not run")
	}
	if err != nil && ran {
		t.Fatalf("serve ran despite the error %v", err)
	}
	if ran && got.LogOutput == nil {
		t.Error("LogOutput is not set to the command's stderr")
	}
	got.LogOutput = nil
	return got, err
}

func defaults() Config {
	return Config{
		Addr:           "127.0.0.1:5555",
		DataDir:        DefaultDataDir(),
		Python:         "python3",
		LogLevel:       slog.LevelInfo,
		MaxRequestBody: 100 << 20,
		EndpointRPS:    500,
		MaxEndpoints:   100,
		InstanceTypes:  quota.DefaultInstanceTypes(),
		MaxConnections: 10000,
	}
}

func writeFile(t *testing.T, name, text string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestConfigValues(t *testing.T) {
	types := writeFile(t, "types.yml", "- {name: Big_Box, cores: 64, memory_bytes: 1000, disk_bytes: 5}\n- {name: Standard_DS1_v2, cores: 3, memory_bytes: 7}\n")
	withTypes := quota.DefaultInstanceTypes()
	withTypes["big_box"] = quota.InstanceType{Name: "Big_Box", Cores: 64, MemoryBytes: 1000, DiskBytes: 5}
	withTypes["standard_ds1_v2"] = quota.InstanceType{Name: "Standard_DS1_v2", Cores: 3, MemoryBytes: 7}

	tests := []struct {
		name string
		env  map[string]string
		args []string
		want func(*Config)
	}{
		{name: "defaults", want: func(*Config) {}},
		{name: "env overrides default", env: map[string]string{"BERTH_ADDR": "127.0.0.1:0", "BERTH_ENV_STRICT": "true", "BERTH_PYTHON": "/usr/bin/python3"},
			want: func(c *Config) {
				c.Addr, c.EnvStrict, c.Python, c.PythonSource = "127.0.0.1:0", true, "/usr/bin/python3", "BERTH_PYTHON"
			}},
		{name: "python flag overrides env", env: map[string]string{"BERTH_PYTHON": "/usr/bin/python3"}, args: []string{"--python", "/opt/py/bin/python3"},
			want: func(c *Config) { c.Python, c.PythonSource = "/opt/py/bin/python3", "--python" }},
		{name: "flag overrides env", env: map[string]string{"BERTH_ADDR": "127.0.0.1:1", "BERTH_ENV_STRICT": "true"}, args: []string{"--addr", "127.0.0.1:2", "--env-strict=false"},
			want: func(c *Config) { c.Addr = "127.0.0.1:2" }},
		{name: "bad env hidden by a good flag", env: map[string]string{"BERTH_ENV_STRICT": "yes"}, args: []string{"--env-strict", "1"},
			want: func(c *Config) { c.EnvStrict = true }},
		{name: "empty env reads as unset", env: map[string]string{"BERTH_MAX_ENDPOINTS": ""}, want: func(*Config) {}},
		{name: "memory quantity binary", env: map[string]string{"BERTH_QUOTA_MEMORY": "512Mi"}, want: func(c *Config) { c.QuotaMemory = 512 << 20 }},
		{name: "memory quantity flag", args: []string{"--quota-memory", "2Gi"}, want: func(c *Config) { c.QuotaMemory = 2 << 30 }},
		{name: "memory quantity decimal", args: []string{"--quota-memory", "1G"}, want: func(c *Config) { c.QuotaMemory = 1_000_000_000 }},
		{name: "memory plain bytes", args: []string{"--quota-memory", "1073741824"}, want: func(c *Config) { c.QuotaMemory = 1 << 30 }},
		{name: "memory fractional quantity", args: []string{"--quota-memory", "1.5Gi"}, want: func(c *Config) { c.QuotaMemory = 3 << 29 }},
		{name: "body plain bytes", env: map[string]string{"BERTH_MAX_REQUEST_BODY": "1000"}, want: func(c *Config) { c.MaxRequestBody = 1000 }},
		{name: "body quantity", args: []string{"--max-request-body=1Mi"}, want: func(c *Config) { c.MaxRequestBody = 1 << 20 }},
		{name: "no rate limit", env: map[string]string{"BERTH_ENDPOINT_RPS": "0"}, want: func(c *Config) { c.EndpointRPS = 0 }},
		{name: "numbers", args: []string{"--endpoint-rps", "2.5", "--quota-cores", "6", "--max-endpoints", "0"},
			want: func(c *Config) { c.EndpointRPS, c.QuotaCores, c.MaxEndpoints = 2.5, 6, 0 }},
		{name: "log level any case", env: map[string]string{"BERTH_LOG_LEVEL": "DEBUG"}, want: func(c *Config) { c.LogLevel = slog.LevelDebug }},
		{name: "instance types file", env: map[string]string{"BERTH_INSTANCE_TYPES": types}, want: func(c *Config) { c.InstanceTypes = withTypes }},
		{name: "data dir", args: []string{"--data-dir", "/tmp/x"}, want: func(c *Config) { c.DataDir = "/tmp/x" }},
		{name: "max connections", env: map[string]string{"BERTH_MAX_CONNECTIONS": "50"}, want: func(c *Config) { c.MaxConnections = 50 }},
		{name: "public url trailing slash", args: []string{"--public-url", "https://berth.example.com:8443/"},
			want: func(c *Config) { c.PublicURL = "https://berth.example.com:8443" }},
		{name: "tls pair", args: []string{"--tls-cert", "c.pem", "--tls-key", "k.pem"}, want: func(c *Config) { c.TLSCert, c.TLSKey = "c.pem", "k.pem" }},
		{name: "self-signed tls", env: map[string]string{"BERTH_TLS": "true"}, want: func(c *Config) { c.TLS = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := runServe(t, tt.env, tt.args...)
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := defaults()
			tt.want(&want)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("config:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// settingErrors unpacks the joined error of loadConfig.
func settingErrors(t *testing.T, err error) []*SettingError {
	t.Helper()
	var errs []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		errs = j.Unwrap()
	} else {
		errs = []error{err}
	}
	var out []*SettingError
	for _, e := range errs {
		var se *SettingError
		if !errors.As(e, &se) {
			t.Fatalf("%v is not a *SettingError", e)
		}
		out = append(out, se)
	}
	return out
}

func TestConfigBadValues(t *testing.T) {
	malformed := writeFile(t, "bad.yml", "name: [not a list\n")
	noCores := writeFile(t, "nocores.yml", "- {name: tiny, cores: 0, memory_bytes: 5}\n")
	missing := filepath.Join(t.TempDir(), "missing.yml")

	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		flag     string // the setting the error must name
		fromEnv  string // "" when the value came from the flag
		value    string
		wrapsErr error // when set, the error must wrap this
	}{
		{name: "env-strict yes flag", args: []string{"--env-strict=yes"}, flag: "env-strict", value: "yes"},
		{name: "env-strict yes env", env: map[string]string{"BERTH_ENV_STRICT": "yes"}, flag: "env-strict", fromEnv: "BERTH_ENV_STRICT", value: "yes"},
		{name: "quota-memory unit", args: []string{"--quota-memory", "12XB"}, flag: "quota-memory", value: "12XB"},
		{name: "quota-memory negative", args: []string{"--quota-memory=-1"}, flag: "quota-memory", value: "-1"},
		{name: "quota-memory negative env", env: map[string]string{"BERTH_QUOTA_MEMORY": "-1Gi"}, flag: "quota-memory", fromEnv: "BERTH_QUOTA_MEMORY", value: "-1Gi"},
		{name: "quota-memory fraction of a byte", args: []string{"--quota-memory", "500m"}, flag: "quota-memory", value: "500m"},
		{name: "quota-memory overflow", args: []string{"--quota-memory", "10000000Ti"}, flag: "quota-memory", value: "10000000Ti"},
		{name: "max-request-body zero", args: []string{"--max-request-body", "0"}, flag: "max-request-body", value: "0"},
		{name: "max-request-body words", env: map[string]string{"BERTH_MAX_REQUEST_BODY": "lots"}, flag: "max-request-body", fromEnv: "BERTH_MAX_REQUEST_BODY", value: "lots"},
		{name: "endpoint-rps negative", args: []string{"--endpoint-rps=-2"}, flag: "endpoint-rps", value: "-2"},
		{name: "endpoint-rps NaN", args: []string{"--endpoint-rps", "NaN"}, flag: "endpoint-rps", value: "NaN"},
		{name: "quota-cores negative", env: map[string]string{"BERTH_QUOTA_CORES": "-1"}, flag: "quota-cores", fromEnv: "BERTH_QUOTA_CORES", value: "-1"},
		{name: "log-level loud", args: []string{"--log-level", "loud"}, flag: "log-level", value: "loud"},
		{name: "max-endpoints x", args: []string{"--max-endpoints", "x"}, flag: "max-endpoints", value: "x"},
		{name: "max-endpoints negative", args: []string{"--max-endpoints=-1"}, flag: "max-endpoints", value: "-1"},
		{name: "instance-types missing", env: map[string]string{"BERTH_INSTANCE_TYPES": missing}, flag: "instance-types", fromEnv: "BERTH_INSTANCE_TYPES", value: missing, wrapsErr: os.ErrNotExist},
		{name: "instance-types malformed", args: []string{"--instance-types", malformed}, flag: "instance-types", value: malformed},
		{name: "instance-types no cores", args: []string{"--instance-types", noCores}, flag: "instance-types", value: noCores},
		{name: "empty addr", args: []string{"--addr="}, flag: "addr", value: ""},
		{name: "max-connections zero", args: []string{"--max-connections", "0"}, flag: "max-connections", value: "0"},
		{name: "public-url no scheme", args: []string{"--public-url", "berth.example.com"}, flag: "public-url", value: "berth.example.com"},
		{name: "public-url query", args: []string{"--public-url", "http://h/?a=b"}, flag: "public-url", value: "http://h/?a=b"},
		{name: "tls-cert without key", args: []string{"--tls-cert", "c.pem"}, flag: "tls-cert", value: "c.pem"},
		{name: "tls with a given pair", args: []string{"--tls=true", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, flag: "tls", value: "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runServe(t, tt.env, tt.args...)
			if err == nil {
				t.Fatal("want an error, got none")
			}
			errs := settingErrors(t, err)
			if len(errs) != 1 {
				t.Fatalf("want one error, got %d: %v", len(errs), err)
			}
			se := errs[0]
			if se.Flag != tt.flag || se.Env != tt.fromEnv || se.Value != tt.value {
				t.Errorf("got flag %q env %q value %q, want %q %q %q", se.Flag, se.Env, se.Value, tt.flag, tt.fromEnv, tt.value)
			}
			if se.Err == nil {
				t.Error("the error does not say what to write instead")
			}
			if tt.wrapsErr != nil && !errors.Is(err, tt.wrapsErr) {
				t.Errorf("%v does not wrap %v", err, tt.wrapsErr)
			}
		})
	}
}

func TestConfigReportsEveryBadValue(t *testing.T) {
	_, err := runServe(t, map[string]string{"BERTH_LOG_LEVEL": "loud"}, "--env-strict", "yes", "--quota-memory", "12XB")
	var got []string
	for _, se := range settingErrors(t, err) {
		got = append(got, se.Flag)
	}
	want := []string{"quota-memory", "env-strict", "log-level"} // table order
	if !reflect.DeepEqual(got, want) {
		t.Errorf("errors for %v, want %v", got, want)
	}
}

func TestSettingErrorMessage(t *testing.T) {
	tests := []struct {
		err  *SettingError
		want string
	}{
		{&SettingError{Flag: "env-strict", Env: "BERTH_ENV_STRICT", Value: "yes", Err: errors.New("want true or false")},
			`--env-strict "yes": want true or false (from BERTH_ENV_STRICT)`},
		{&SettingError{Flag: "env-strict", Value: "yes", Err: errors.New("want true or false")},
			`--env-strict "yes": want true or false`},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}

// TestHelpFromTable checks that every row of the table is a flag whose default and help
// come from the row, and that every row has its own flag and variable.
func TestHelpFromTable(t *testing.T) {
	cmd := NewServeCommand()
	flags, envs := map[string]bool{}, map[string]bool{}
	for _, s := range settings() {
		if flags[s.name] || envs[s.env] {
			t.Errorf("%s / %s appears twice in the table", s.name, s.env)
		}
		flags[s.name], envs[s.env] = true, true
		if !strings.HasPrefix(s.env, "BERTH_") || s.doc == "" {
			t.Errorf("%s: env %q, doc %q", s.name, s.env, s.doc)
		}
		f := cmd.Flags().Lookup(s.name)
		if f == nil {
			t.Errorf("no flag --%s", s.name)
			continue
		}
		if f.DefValue != s.def || !strings.Contains(f.Usage, s.doc) || !strings.Contains(f.Usage, s.env) {
			t.Errorf("--%s: default %q, usage %q", s.name, f.DefValue, f.Usage)
		}
	}
}

func TestLogAttrsAreTyped(t *testing.T) {
	cfg := defaults()
	cfg.QuotaMemory = 512 << 20
	cfg.InstanceTypes = map[string]quota.InstanceType{"b": {Name: "B"}, "a": {Name: "A"}}
	attrs := cfg.logAttrs()
	got := map[string]any{}
	for i := 0; i+1 < len(attrs); i += 2 {
		got[attrs[i].(string)] = attrs[i+1]
	}
	if len(got) != len(settings()) || len(attrs) != 2*len(settings()) {
		t.Errorf("log has %d settings, table has %d", len(got), len(settings()))
	}
	want := map[string]any{"quota-memory": int64(512 << 20), "log-level": slog.LevelInfo, "env-strict": false, "endpoint-rps": 500.0, "instance-types": "A,B"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s logs %#v, want %#v", k, got[k], v)
		}
	}
}
