package inference

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func mapLookup(m map[string]string) lookup {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

// TestSettingsPrecedence checks azmlinfsrv's order: flag, then environment, then
// config file, then default, setting by setting.
func TestSettingsPrecedence(t *testing.T) {
	cwd := t.TempDir()
	script := filepath.Join(cwd, "score.py")
	if err := os.WriteFile(script, []byte("def init(): pass\ndef run(d): return d\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	type got struct {
		Port, HealthPort, Workers int
		ScoringTimeout            time.Duration
		WorkerTimeout             time.Duration
		ModelDir                  string
		CORS                      []string
		NoVersion                 bool
	}
	defaults := got{Port: 5001, Workers: 1, ScoringTimeout: time.Hour, WorkerTimeout: 300 * time.Second}
	for _, tc := range []struct {
		name             string
		flags, env, file map[string]string
		want             func(g *got)
	}{
		{name: "defaults", want: func(g *got) {}},
		{name: "file", file: map[string]string{"SERVER_PORT": "7001", "WORKER_COUNT": "3", "SCORING_TIMEOUT_MS": "250", "AZUREML_MODEL_DIR": "/file"},
			want: func(g *got) { g.Port, g.Workers, g.ScoringTimeout, g.ModelDir = 7001, 3, 250*time.Millisecond, "/file" }},
		{name: "env over file", file: map[string]string{"SERVER_PORT": "7001", "AZUREML_MODEL_DIR": "/file"},
			env:  map[string]string{"SERVER_PORT": "7002", "AZUREML_MODEL_DIR": "/env", "WORKER_TIMEOUT": "5"},
			want: func(g *got) { g.Port, g.ModelDir, g.WorkerTimeout = 7002, "/env", 5*time.Second }},
		{name: "flag over env", file: map[string]string{"SERVER_PORT": "7001"},
			env:   map[string]string{"SERVER_PORT": "7002", "AZUREML_MODEL_DIR": "/env", "AML_CORS_ORIGINS": "env.com"},
			flags: map[string]string{"port": "7003", "model_dir": "/flag", "access_control_allow_origins": "a.com, b.com"},
			want:  func(g *got) { g.Port, g.ModelDir, g.CORS = 7003, "/flag", []string{"a.com", "b.com"} }},
		{name: "health port needs SEPERATE_HEALTH_ENDPOINT", flags: map[string]string{"health_port": "7100"},
			want: func(g *got) {}},
		{name: "separate health endpoint", env: map[string]string{"SEPERATE_HEALTH_ENDPOINT": "true"},
			want: func(g *got) { g.HealthPort = 5000 }},
		{name: "separate health port from flag", env: map[string]string{"SEPERATE_HEALTH_ENDPOINT": "true", "HEALTH_PORT": "7101"},
			flags: map[string]string{"health_port": "7100"}, want: func(g *got) { g.HealthPort = 7100 }},
		{name: "server version off", env: map[string]string{"SERVER_VERSION_LOG_RESPONSE_ENABLED": "false"},
			want: func(g *got) { g.NoVersion = true }},
		{name: "server version TRUE", env: map[string]string{"SERVER_VERSION_LOG_RESPONSE_ENABLED": "TRUE"}, want: func(g *got) {}},
		{name: "timeouts off", env: map[string]string{"SCORING_TIMEOUT_MS": "0", "WORKER_TIMEOUT": "0"},
			want: func(g *got) { g.ScoringTimeout, g.WorkerTimeout = 0, 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			flags := map[string]string{"entry_script": script}
			for k, v := range tc.flags {
				flags[k] = v
			}
			c, err := settingsConfig(resolve(mapLookup(flags), mapLookup(tc.env), tc.file), cwd)
			if err != nil {
				t.Fatal(err)
			}
			want := defaults
			tc.want(&want)
			g := got{c.Port, c.HealthPort, c.WorkerCount, c.ScoringTimeout, c.WorkerTimeout, c.ModelDir, c.CORSOrigins, c.NoServerVersion}
			if diff := cmp.Diff(want, g); diff != "" {
				t.Fatalf("settings (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSettingsErrors reports every bad value at once, naming where it came from.
func TestSettingsErrors(t *testing.T) {
	env := map[string]string{"SERVER_PORT": "70000", "WORKER_COUNT": "0", "SCORING_TIMEOUT_MS": "soon"}
	_, err := settingsConfig(resolve(mapLookup(nil), mapLookup(env), nil), t.TempDir())
	var names []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		var se *SettingError
		if errors.As(e, &se) {
			if se.From != fromEnv {
				t.Errorf("%s: from %q, want the environment", se.Name, se.From)
			}
			names = append(names, se.Name)
		} else if !errors.Is(e, ErrNoEntryScript) {
			t.Errorf("unexpected error %v", e)
		}
	}
	if diff := cmp.Diff([]string{"SERVER_PORT", "WORKER_COUNT", "SCORING_TIMEOUT_MS"}, names); diff != "" {
		t.Fatalf("bad settings (-want +got):\n%s\n%v", diff, err)
	}
	if !errors.Is(err, ErrNoEntryScript) {
		t.Fatalf("no entry script: %v", err)
	}
}

// TestCommandConfigFile finds config.json in AML_APP_ROOT, reads it under env and flags,
// resolves a relative entry script under the app root and exports --config_file.
func TestCommandConfigFile(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "score.py"), []byte("def init(): pass\ndef run(d): return d\n"), 0o644)
	os.WriteFile(filepath.Join(root, "config.json"), []byte(`{"AZUREML_ENTRY_SCRIPT": "score.py", "WORKER_COUNT": 2, "SCORING_TIMEOUT_MS": 1500, "NOT_A_SETTING": true}`), 0o644)
	env := map[string]string{"AML_APP_ROOT": root, "WORKER_COUNT": "4"}
	c, err := commandConfig(mapLookup(nil), mapLookup(env), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if c.EntryScript != filepath.Join(root, "score.py") || c.WorkerCount != 4 || c.ScoringTimeout != 1500*time.Millisecond {
		t.Fatalf("entry %q, workers %d, timeout %s", c.EntryScript, c.WorkerCount, c.ScoringTimeout)
	}
	if c.started.configFile != filepath.Join(root, "config.json") || !cmp.Equal(c.started.extraKeys, []string{"NOT_A_SETTING"}) {
		t.Fatalf("config file %q, extra keys %v", c.started.configFile, c.started.extraKeys)
	}

	other := filepath.Join(t.TempDir(), "other.json")
	os.WriteFile(other, []byte(`{"WORKER_COUNT": "5"}`), 0o644)
	cwd := filepath.Dir(other)
	c, err = commandConfig(mapLookup(map[string]string{"config_file": "other.json", "entry_script": filepath.Join(root, "score.py")}), mapLookup(nil), cwd)
	if err != nil {
		t.Fatal(err)
	}
	if c.WorkerCount != 5 || !cmp.Equal(c.started.flagEnv, []string{"AZUREML_CONFIG_FILE=" + other}) {
		t.Fatalf("--config_file: workers %d, exported %v", c.WorkerCount, c.started.flagEnv)
	}

	os.WriteFile(other, []byte(`[1, 2]`), 0o644)
	if _, err := commandConfig(mapLookup(map[string]string{"config_file": other}), mapLookup(nil), cwd); err == nil {
		t.Fatal("a config file that is not a JSON object was accepted")
	}
}

// TestWorkerEnv checks the variables score.py sees: azmlinfsrv's, and AZUREML_MODEL_DIR
// only when a model folder is given.
func TestWorkerEnv(t *testing.T) {
	t.Setenv("AZUREML_MODEL_DIR", "")
	os.Unsetenv("AZUREML_MODEL_DIR")
	t.Setenv("AML_APP_ROOT", "")
	os.Unsetenv("AML_APP_ROOT")
	envOf := func(c Config) map[string]string {
		m := map[string]string{}
		for _, kv := range c.workerEnv() {
			k, v, _ := strings.Cut(kv, "=")
			m[k] = v
		}
		return m
	}
	c := Config{EntryScript: "/app/score.py", WorkerCount: 2, AppRoot: "/app", httpPort: 5001}
	c.started.flagEnv = []string{"AML_CORS_ORIGINS=a.com"}
	got := envOf(c)
	want := map[string]string{"AML_APP_ROOT": "/app", "AZUREML_ENTRY_SCRIPT": "/app/score.py", "WORKER_COUNT": "2",
		"SERVER_PORT": "5001", "HEALTH_PORT": "5001", "HTTP_X_MS_SERVER_VERSION": "azmlinfsrv/" + CompatibleVersion,
		"AML_APP_INSIGHTS_ENABLED": "false", "TRANSPORT_PROTOCOL": "grpc", "AML_CORS_ORIGINS": "a.com", "OMP_NUM_THREADS": "1"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if _, ok := got["AZUREML_MODEL_DIR"]; ok {
		t.Errorf("AZUREML_MODEL_DIR is set without a model folder")
	}
	c.NoServerVersion, c.ModelDir = true, "/m"
	got = envOf(c)
	if _, ok := got["HTTP_X_MS_SERVER_VERSION"]; ok || got["AZUREML_MODEL_DIR"] != "/m" {
		t.Errorf("version %q, model dir %q", got["HTTP_X_MS_SERVER_VERSION"], got["AZUREML_MODEL_DIR"])
	}
}
