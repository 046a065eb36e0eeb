package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/wire"
)

// assetColumns are the fields -o table shows for environments and data assets.
var assetColumns = []string{"name", "version", "stage", "created_at"}

// environmentKind is `berth environment` (az ml environment): create sends the spec
// with the conda file's content and uploads nothing.
func environmentKind() assetKind {
	return assetKind{
		kind:        wire.KindEnvironment,
		short:       "Register environments (conda file and image), referenced as azureml:<name>:<version> (az ml environment)",
		createShort: "Register a version of an environment; its conda file is built when a deployment uses it",
		columns:     assetColumns,
		createFlags: environmentFlags,
	}
}

// environmentFile is environment.yml (environment.schema.json).
type environmentFile struct {
	Schema          string            `yaml:"$schema"`
	Name            string            `yaml:"name"`
	Version         string            `yaml:"version"`
	Description     string            `yaml:"description"`
	Tags            map[string]string `yaml:"tags"`
	Image           string            `yaml:"image"`
	CondaFile       string            `yaml:"conda_file"`
	Build           *spec.Build       `yaml:"build"`
	OSType          string            `yaml:"os_type"`
	InferenceConfig any               `yaml:"inference_config"`
}

// environmentFlags registers environment create's flags; a flag wins over the -f
// file's field.
func environmentFlags(cmd *cobra.Command, sets *[]string) func() (newAsset, error) {
	var file string
	var flags environmentFile
	cmd.Flags().StringVarP(&file, "file", "f", "", "environment YAML")
	cmd.Flags().StringVarP(&flags.Name, "name", "n", "", "name")
	cmd.Flags().StringVarP(&flags.Version, "version", "v", "", "version (default: the next whole number)")
	cmd.Flags().StringVarP(&flags.Image, "image", "i", "", "base image (recorded; the process runtime runs on the server's interpreter)")
	cmd.Flags().StringVarP(&flags.CondaFile, "conda-file", "c", "", "conda environment file")
	cmd.Flags().StringVarP(&flags.Description, "description", "d", "", "description")
	return func() (newAsset, error) {
		var env environmentFile
		if file != "" {
			if err := decodeFile(file, &env, "name, version, image, conda_file, build, description, tags, os_type, inference_config"); err != nil {
				return newAsset{}, err
			}
			if env.CondaFile != "" && !filepath.IsAbs(env.CondaFile) {
				env.CondaFile = filepath.Join(filepath.Dir(file), env.CondaFile)
			}
		}
		overrideWithFlags([2]*string{&env.Name, &flags.Name}, [2]*string{&env.Version, &flags.Version}, [2]*string{&env.Image, &flags.Image},
			[2]*string{&env.CondaFile, &flags.CondaFile}, [2]*string{&env.Description, &flags.Description})
		if err := applySets(&env, *sets); err != nil {
			return newAsset{}, err
		}
		if env.Name == "" {
			return newAsset{}, diag.New(diag.BadArgument, "--name is required (or an environment YAML with -f)")
		}
		if (env.Image == "") == (env.Build == nil) {
			return newAsset{}, &diag.Error{Code: diag.BadArgument, Target: "image",
				Message: "an environment needs exactly one of image or build, as in Azure (the process runtime uses the conda file on the server's interpreter and notes the image)"}
		}
		e := spec.Environment{Image: env.Image, Build: env.Build, Description: env.Description, Tags: env.Tags, OSType: env.OSType, InferenceConfig: env.InferenceConfig}
		if env.CondaFile != "" {
			content, err := readCondaFile(env.CondaFile)
			if err != nil {
				return newAsset{}, err
			}
			e.CondaFile = content
		}
		raw, err := json.Marshal(e)
		if err != nil {
			return newAsset{}, fmt.Errorf("encode environment: %w", err)
		}
		return newAsset{req: wire.AssetCreate{Name: env.Name, Version: env.Version, Spec: raw}}, nil
	}
}

// readCondaFile reads a conda environment file for the server to build; a pip
// requirements file (*.txt) becomes a conda file whose pip list holds its lines.
func readCondaFile(path string) (any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "environment.conda_file", Message: err.Error()}
	}
	if strings.HasSuffix(path, ".txt") {
		var lines []any
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				lines = append(lines, l)
			}
		}
		return map[string]any{"dependencies": []any{map[string]any{"pip": lines}}}, nil
	}
	var content any
	if err := yaml.Unmarshal(b, &content); err != nil {
		return nil, &diag.Error{Code: diag.BadArgument, Target: "environment.conda_file",
			Message: fmt.Sprintf("%s is not valid YAML: %v", path, err)}
	}
	return content, nil
}
