package inference

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berthml/berth/internal/instance"
)

// CompatibleVersion is the azureml-inference-server-http release whose behaviour
// `berth inference-server` reproduces; x-ms-server-version names it.
const CompatibleVersion = "1.5.1"

// ErrNoEntryScript means no setting named the scoring script.
var ErrNoEntryScript = errors.New("either provide an entry_script using --entry_script or provide a path to the configuration file using --config_file")

// SettingError is an azmlinfsrv setting whose value is wrong. Err says what is wrong.
type SettingError struct {
	Name  string // the environment variable (also the config file's key)
	From  string // where the value came from: "--flag", "environment" or "config file"
	Value string
	Err   error
}

func (e *SettingError) Error() string {
	return fmt.Sprintf("%s=%q (from %s): %v", e.Name, e.Value, e.From, e.Err)
}

func (e *SettingError) Unwrap() error { return e.Err }

// Where a setting's value came from.
const (
	fromDefault = "default"
	fromEnv     = "environment"
	fromFile    = "config file"
)

// setting is one row of azmlinfsrv's configuration: its environment variable (which is
// also its key in the config file), its flag if it has one, its default and what it does.
type setting struct {
	env, flag, def, doc string
}

// settings is the configuration table of `berth inference-server`, azmlinfsrv's. Each
// default is written here and nowhere else.
func settings() []setting {
	return []setting{
		{"AZUREML_ENTRY_SCRIPT", instance.FlagEntryScript, "", "the scoring script (a relative path in the environment or config file is under AML_APP_ROOT)"},
		{"AZUREML_MODEL_DIR", instance.FlagModelDir, "", "the model folder, given to score.py as AZUREML_MODEL_DIR"},
		{"SERVER_PORT", instance.FlagPort, "5001", "port to serve on"},
		{"HEALTH_PORT", instance.FlagHealthPort, "5000", "port of the dedicated health listener, used only with SEPERATE_HEALTH_ENDPOINT=true"},
		{"SEPERATE_HEALTH_ENDPOINT", "", "", "true: also listen on the health port (azmlinfsrv's spelling)"},
		{"WORKER_COUNT", instance.FlagWorkerCount, "1", "Python worker processes"},
		{"WORKER_TIMEOUT", "", "300", "seconds a request may run before its worker is stopped and the connection closed (0: no limit)"},
		{"SCORING_TIMEOUT_MS", "", "3600000", "milliseconds run() may take before the request is answered 500 (0: no limit)"},
		{"AML_APP_ROOT", "", "", "the app root (default the current directory): sys.path, config.json and swagger files"},
		{"AML_APP_INSIGHTS_ENABLED", "", "false", "accepted; Berth sends nothing to Application Insights"},
		{"AML_APP_INSIGHTS_KEY", instance.FlagAppInsightsKey, "", "accepted and logged; Berth sends nothing to Application Insights"},
		{"AML_CORS_ORIGINS", instance.FlagCORSOrigins, "", `enable CORS for these origins, separated by "," (or *)`},
		{"SERVER_VERSION_LOG_RESPONSE_ENABLED", "", "true", "anything but true leaves out the x-ms-server-version header"},
		{"SERVICE_NAME", "", "ML service", "the title of /swagger.json"},
		{"SERVICE_VERSION", "", "1.0", "the version of /swagger.json"},
		{"SERVICE_PATH_PREFIX", "", "", "the prefix of the paths in /swagger.json"},
		{"AZUREML_CONFIG_FILE", instance.FlagConfigFile, "", "JSON file of settings keyed by these names (else config.json in AML_APP_ROOT or the script's folder)"},
	}
}

// acceptedKeys are config file keys azmlinfsrv reads that change nothing in Berth (the
// workers read AZUREML_LOG_LEVEL and AZUREML_SOURCE_DIRECTORY from the environment).
func acceptedKeys() []string {
	return []string{"AZUREML_SOURCE_DIRECTORY", "AZUREML_LOG_LEVEL", "WORKER_PRELOAD", "WORKSPACE_NAME", "HOSTNAME",
		"AML_MODEL_DC_STORAGE_ENABLED", "APP_INSIGHTS_LOG_RESPONSE_ENABLED", "AZUREML_DEBUG_PORT"}
}

// value is a resolved setting and where it came from.
type value struct{ raw, from string }

// lookup reads one source of settings: a flag by name, or an environment variable.
type lookup func(name string) (string, bool)

// resolve takes each setting from its flag, else its environment variable, else the
// config file, else its default: azmlinfsrv's precedence.
func resolve(flag, env lookup, file map[string]string) map[string]value {
	out := make(map[string]value)
	for _, s := range settings() {
		v := value{s.def, fromDefault}
		if raw, ok := file[s.env]; ok {
			v = value{raw, fromFile}
		}
		if raw, ok := env(s.env); ok {
			v = value{raw, fromEnv}
		}
		if s.flag != "" {
			if raw, ok := flag(s.flag); ok {
				v = value{raw, "--" + s.flag}
			}
		}
		out[s.env] = v
	}
	return out
}

// findConfigFile is azmlinfsrv's search: --config_file or AZUREML_CONFIG_FILE, else a
// non-empty config.json in the app root, then in the entry script's folder.
func findConfigFile(flag, env lookup, appRoot string) string {
	if p, ok := flag(instance.FlagConfigFile); ok {
		return p
	}
	if p, ok := env("AZUREML_CONFIG_FILE"); ok && nonEmptyFile(p) {
		return p
	}
	dirs := []string{appRoot}
	if p, ok := flag(instance.FlagEntryScript); ok {
		dirs = append(dirs, filepath.Dir(p))
	} else if p, ok := env("AZUREML_ENTRY_SCRIPT"); ok {
		dirs = append(dirs, filepath.Dir(filepath.Join(appRoot, p)))
	}
	for _, d := range dirs {
		if p := filepath.Join(d, "config.json"); nonEmptyFile(p) {
			return p
		}
	}
	return ""
}

func nonEmptyFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Size() > 0
}

// readConfigFile reads a JSON object of settings; numbers and booleans become their text.
// It also returns the keys that no setting has, which azmlinfsrv warns about.
func readConfigFile(path string) (map[string]string, []string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("config file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, nil, fmt.Errorf("config file %s: want a JSON object of settings: %w", path, err)
	}
	known := make(map[string]bool)
	for _, s := range settings() {
		known[s.env] = true
	}
	for _, k := range acceptedKeys() {
		known[k] = true
	}
	out := make(map[string]string, len(raw))
	var extra []string
	for k, v := range raw {
		if !known[k] {
			extra = append(extra, k)
		}
		switch v := v.(type) {
		case nil:
		case string:
			out[k] = v
		case json.Number, bool:
			out[k] = fmt.Sprint(v)
		default:
			return nil, nil, &SettingError{Name: k, From: fromFile, Value: fmt.Sprint(v), Err: errors.New("want a string, number or boolean")}
		}
	}
	sort.Strings(extra)
	return out, extra, nil
}

// settingsConfig builds the Config of `berth inference-server` from the resolved
// settings; cwd is the current directory. Every bad value is reported at once.
func settingsConfig(v map[string]value, cwd string) (Config, error) {
	var c Config
	var errs []error
	bad := func(name string, err error) {
		errs = append(errs, &SettingError{Name: name, From: v[name].from, Value: v[name].raw, Err: err})
	}
	num := func(name string, lo, hi int) int {
		n, err := strconv.Atoi(strings.TrimSpace(v[name].raw))
		if err != nil || n < lo || n > hi {
			bad(name, fmt.Errorf("want a whole number from %d to %d", lo, hi))
		}
		return n
	}
	c.AppRoot = v["AML_APP_ROOT"].raw
	if c.AppRoot == "" {
		c.AppRoot = cwd
	}
	c.EntryScript = v["AZUREML_ENTRY_SCRIPT"].raw
	if c.EntryScript != "" && !filepath.IsAbs(c.EntryScript) {
		base := c.AppRoot
		if strings.HasPrefix(v["AZUREML_ENTRY_SCRIPT"].from, "--") {
			base = cwd // a path on the command line is the user's, as azmlinfsrv's realpath makes it
		}
		c.EntryScript = filepath.Join(base, c.EntryScript)
	}
	if c.EntryScript == "" {
		// azmlinfsrv imports main from the app root when no entry script is named.
		if p := filepath.Join(c.AppRoot, "main.py"); nonEmptyFile(p) {
			c.EntryScript = p
		} else {
			errs = append(errs, ErrNoEntryScript)
		}
	}
	c.ModelDir = v["AZUREML_MODEL_DIR"].raw
	c.Port = num("SERVER_PORT", 1, 65535)
	if v["SEPERATE_HEALTH_ENDPOINT"].raw == "true" {
		c.HealthPort = num("HEALTH_PORT", 1, 65535)
	}
	c.WorkerCount = num("WORKER_COUNT", 1, 1<<16)
	c.WorkerTimeout = time.Duration(num("WORKER_TIMEOUT", 0, 1<<30)) * time.Second
	c.ScoringTimeout = time.Duration(num("SCORING_TIMEOUT_MS", 0, 1<<62/int(time.Millisecond))) * time.Millisecond
	if o := v["AML_CORS_ORIGINS"]; o.from != fromDefault {
		c.CORSOrigins = splitOrigins(o.raw)
	}
	c.NoServerVersion = !strings.EqualFold(v["SERVER_VERSION_LOG_RESPONSE_ENABLED"].raw, "true")
	c.ServiceName, c.ServiceVersion = v["SERVICE_NAME"].raw, v["SERVICE_VERSION"].raw
	c.ServicePathPrefix = v["SERVICE_PATH_PREFIX"].raw
	c.started = startupInfo{
		configFile:         v["AZUREML_CONFIG_FILE"].raw,
		appInsightsKey:     v["AML_APP_INSIGHTS_KEY"].raw,
		appInsightsEnabled: v["AML_APP_INSIGHTS_ENABLED"].raw == "true" || strings.HasPrefix(v["AML_APP_INSIGHTS_KEY"].from, "--"),
		separateHealth:     v["SEPERATE_HEALTH_ENDPOINT"].raw,
	}
	// What azmlinfsrv puts in the environment from its flags, for the workers.
	for _, name := range []string{"AML_APP_INSIGHTS_KEY", "AML_CORS_ORIGINS", "AZUREML_CONFIG_FILE"} {
		if strings.HasPrefix(v[name].from, "--") {
			raw := v[name].raw
			if name == "AZUREML_CONFIG_FILE" {
				raw = absPath(cwd, raw)
			}
			c.started.flagEnv = append(c.started.flagEnv, name+"="+raw)
		}
	}
	return c, errors.Join(errs...)
}

func absPath(cwd, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(cwd, p)
}

// splitOrigins splits "a.com, b.com" as azmlinfsrv does.
func splitOrigins(s string) []string {
	var out []string
	for _, o := range strings.Split(s, ",") {
		out = append(out, strings.TrimSpace(o))
	}
	return out
}

// startupInfo is what the settings block prints beyond Config's own fields, and the
// variables azmlinfsrv exports from its flags.
type startupInfo struct {
	standalone         bool // configured by `berth inference-server`'s settings
	configFile         string
	appInsightsKey     string
	appInsightsEnabled bool
	separateHealth     string
	flagEnv            []string
	extraKeys          []string // config file keys no setting has
}

// appInsights says whether azmlinfsrv would enable Application Insights: asked for, with
// a key that is a UUID (8-4-4-4-12 hexadecimal digits).
func (s startupInfo) appInsights() bool {
	k := s.appInsightsKey
	if !s.appInsightsEnabled || len(k) != 36 {
		return false
	}
	for i, r := range k {
		dash := i == 8 || i == 13 || i == 18 || i == 23
		hex := strings.ContainsRune("0123456789abcdefABCDEF", r)
		if dash != (r == '-') || (!dash && !hex) {
			return false
		}
	}
	return true
}
