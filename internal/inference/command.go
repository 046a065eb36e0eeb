package inference

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berthml/berth/internal/instance"
)

// NewCommand returns `berth inference-server`, the drop-in for azmlinfsrv.
func NewCommand() *cobra.Command {
	var host, python, statusFile string
	cmd := &cobra.Command{
		Use:   "inference-server",
		Short: "Serve one score.py over HTTP, standalone, like azmlinfsrv (for debugging a scoring script)",
		Long: `Serve a scoring script exactly as an instance of a deployment does: GET / (health),
GET|POST /score (run()), GET /swagger.json. Flags, environment variables and the config
file are azmlinfsrv's, with its precedence: flag, then environment, then config file:

  berth inference-server --entry_script score.py --model_dir ./model-root

` + settingsHelp(),
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cwd, err := os.Getwd()
			if err != nil {
				return err
			}
			cfg, err := commandConfig(flagLookup(cmd.Flags()), envLookup, cwd)
			if err != nil {
				return err
			}
			cfg.Host, cfg.Python, cfg.StatusFile = host, python, statusFile
			cfg.Log = cmd.OutOrStdout()
			return Serve(cmd.Context(), cfg)
		},
	}
	defaultPython := os.Getenv("BERTH_PYTHON")
	if defaultPython == "" {
		defaultPython = instance.DefaultPython
	}
	f := cmd.Flags()
	for _, s := range settings() {
		if s.flag == "" {
			continue
		}
		doc := s.doc + " (env " + s.env + ")"
		switch s.flag {
		case instance.FlagPort, instance.FlagHealthPort, instance.FlagWorkerCount:
			n, _ := strconv.Atoi(s.def)
			f.Int(s.flag, n, doc)
		default:
			f.String(s.flag, s.def, doc)
		}
	}
	f.StringVar(&host, instance.FlagHost, "0.0.0.0", "address to bind (Berth's; azmlinfsrv always binds 0.0.0.0)")
	f.StringVar(&python, instance.FlagPython, defaultPython, "Python interpreter (env BERTH_PYTHON)")
	f.StringVar(&statusFile, instance.FlagStatusFile, "", "write the startup status here as JSON: the error, or the phase timings (used by berth serve)")
	return cmd
}

// flagLookup reads a flag given on the command line.
func flagLookup(f *pflag.FlagSet) lookup {
	return func(name string) (string, bool) {
		fl := f.Lookup(name)
		if fl == nil || !fl.Changed {
			return "", false
		}
		return fl.Value.String(), true
	}
}

// envLookup reads an environment variable; an empty one counts as unset.
func envLookup(name string) (string, bool) {
	v, ok := os.LookupEnv(name)
	return v, ok && v != ""
}

// commandConfig resolves azmlinfsrv's settings from flags, environment and config file.
func commandConfig(flag, env lookup, cwd string) (Config, error) {
	appRoot := cwd
	if v, ok := env("AML_APP_ROOT"); ok {
		appRoot = v
	}
	var file map[string]string
	var extra []string
	path := findConfigFile(flag, env, appRoot)
	if path != "" {
		path = absPath(cwd, path)
		var err error
		if file, extra, err = readConfigFile(path); err != nil {
			return Config{}, err
		}
	}
	vals := resolve(flag, env, file)
	if path != "" {
		vals["AZUREML_CONFIG_FILE"] = value{path, vals["AZUREML_CONFIG_FILE"].from}
	}
	cfg, err := settingsConfig(vals, cwd)
	if err != nil {
		return Config{}, err
	}
	cfg.started.standalone = true
	cfg.started.extraKeys = extra
	return cfg, nil
}

// settingsHelp lists the environment variables of the settings table for --help.
func settingsHelp() string {
	var b strings.Builder
	b.WriteString("Environment variables (also the keys of the JSON config file):\n")
	for _, s := range settings() {
		def := ""
		if s.def != "" {
			def = " (default " + s.def + ")"
		}
		fmt.Fprintf(&b, "  %-36s %s%s\n", s.env, s.doc, def)
	}
	return b.String()
}
