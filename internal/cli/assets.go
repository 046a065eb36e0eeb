package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/spec"
	"github.com/berthml/berth/internal/wire"
)

var assetColumns = []string{"name", "version", "stage", "created_at"}

// assetAPI is how the shared verbs reach one kind of registered asset.
type assetAPI struct {
	get     func(ctx context.Context, c *client.Client, name, version string) (json.RawMessage, error)
	list    func(ctx context.Context, c *client.Client, name string) (json.RawMessage, error)
	archive func(ctx context.Context, c *client.Client, name, version string, archived bool) (json.RawMessage, error)
	columns []string
}

// kindAPI reaches environments or data assets.
func kindAPI(kind string) assetAPI {
	return assetAPI{
		get: func(ctx context.Context, c *client.Client, name, version string) (json.RawMessage, error) {
			return c.GetAsset(ctx, kind, name, version)
		},
		list: func(ctx context.Context, c *client.Client, name string) (json.RawMessage, error) {
			return c.ListAssets(ctx, kind, name)
		},
		archive: func(ctx context.Context, c *client.Client, name, version string, archived bool) (json.RawMessage, error) {
			return c.ArchiveAsset(ctx, kind, name, version, archived)
		},
		columns: assetColumns,
	}
}

// assetCommands are the show, list, archive and restore verbs every asset kind has.
func assetCommands(g *globals, api assetAPI) []*cobra.Command {
	var showName, showVersion, showLabel, listName string
	show := &cobra.Command{
		Use:   "show",
		Short: "Show a version (--label latest for the newest not archived)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := assetVersion(showVersion, showLabel)
			if err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := api.get(cmd.Context(), c, showName, v)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, api.columns...)
		},
	}
	show.Flags().StringVarP(&showName, "name", "n", "", "name")
	show.Flags().StringVarP(&showVersion, "version", "v", "", "version")
	show.Flags().StringVarP(&showLabel, "label", "l", "", "latest")
	show.MarkFlagRequired("name")
	list := &cobra.Command{
		Use:   "list",
		Short: "List them, or the versions of one with --name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := api.list(cmd.Context(), c, listName)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, api.columns...)
		},
	}
	list.Flags().StringVarP(&listName, "name", "n", "", "name")
	out := []*cobra.Command{show, list}
	for _, archived := range []bool{true, false} {
		var name, version string
		use, short := "restore", "Restore an archived version"
		if archived {
			use, short = "archive", "Archive a version: usable by exact version, skipped by @latest"
		}
		cmd := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.NoArgs,
			RunE: func(cmd *cobra.Command, _ []string) error {
				c, err := g.connect()
				if err != nil {
					return err
				}
				raw, err := api.archive(cmd.Context(), c, name, version, archived)
				if err != nil {
					return err
				}
				return g.print(cmd.OutOrStdout(), raw, api.columns...)
			},
		}
		cmd.Flags().StringVarP(&name, "name", "n", "", "name")
		cmd.Flags().StringVarP(&version, "version", "v", "", "version")
		cmd.MarkFlagRequired("name")
		cmd.MarkFlagRequired("version")
		out = append(out, cmd)
	}
	return out
}

// assetVersion reads --version or --label (latest).
func assetVersion(version, label string) (string, error) {
	switch {
	case version != "" && label != "":
		return "", diag.New(diag.BadArgument, "give --version or --label, not both")
	case version != "":
		return version, nil
	case label == "latest" || label == "":
		return "latest", nil
	}
	return "", diag.New(diag.BadArgument, "--label %q: the only label is latest", label)
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

func newEnvironmentCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "environment",
		Short: "Register environments (conda file and image), referenced as azureml:<name>:<version> (az ml environment)",
	}
	var file string
	var f environmentFile
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a version of an environment; its conda file is built when a deployment uses it",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := f
			env := environmentFile{}
			if file != "" {
				if err := decodeFile(file, &env, "name, version, image, conda_file, build, description, tags, os_type, inference_config"); err != nil {
					return err
				}
				if env.CondaFile != "" && !filepath.IsAbs(env.CondaFile) {
					env.CondaFile = filepath.Join(filepath.Dir(file), env.CondaFile)
				}
			}
			for _, kv := range [][2]*string{{&env.Name, &flags.Name}, {&env.Version, &flags.Version}, {&env.Image, &flags.Image}, {&env.CondaFile, &flags.CondaFile}, {&env.Description, &flags.Description}} {
				if *kv[1] != "" {
					*kv[0] = *kv[1]
				}
			}
			if env.Name == "" {
				return diag.New(diag.BadArgument, "--name is required (or an environment YAML with -f)")
			}
			if (env.Image == "") == (env.Build == nil) {
				return &diag.Error{Code: diag.BadArgument, Target: "image",
					Message: "an environment needs exactly one of image or build, as in Azure (the process runtime uses the conda file on the server's interpreter and notes the image)"}
			}
			e := spec.Environment{Image: env.Image, Build: env.Build, Description: env.Description, Tags: env.Tags, OSType: env.OSType, InferenceConfig: env.InferenceConfig}
			if env.CondaFile != "" {
				content, err := readCondaFile(env.CondaFile)
				if err != nil {
					return err
				}
				e.CondaFile = content
			}
			raw, err := json.Marshal(e)
			if err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			out, err := c.CreateAsset(cmd.Context(), "environment", wire.AssetCreate{Name: env.Name, Version: env.Version, Spec: raw})
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), out, assetColumns...)
		},
	}
	create.Flags().StringVarP(&file, "file", "f", "", "environment YAML")
	create.Flags().StringVarP(&f.Name, "name", "n", "", "name")
	create.Flags().StringVarP(&f.Version, "version", "v", "", "version (default: the next whole number)")
	create.Flags().StringVarP(&f.Image, "image", "i", "", "base image (recorded; the process runtime runs on the server's interpreter)")
	create.Flags().StringVarP(&f.CondaFile, "conda-file", "c", "", "conda environment file")
	create.Flags().StringVarP(&f.Description, "description", "d", "", "description")
	cmd.AddCommand(append([]*cobra.Command{create}, assetCommands(g, kindAPI("environment"))...)...)
	return cmd
}

func newDataCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "data",
		Short: "Register data assets (uri_folder, uri_file) for batch jobs, referenced as azureml:<name>:<version> (az ml data)",
	}
	var name, version, path, typ, description string
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a version of a data asset from a local file or folder (uploaded)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := os.Stat(path)
			if err != nil {
				return &diag.Error{Code: diag.BadArgument, Target: "path", Message: err.Error()}
			}
			switch {
			case typ == "":
				typ = "uri_file"
				if info.IsDir() {
					typ = "uri_folder"
				}
			case typ == "uri_folder" && !info.IsDir(), typ == "uri_file" && info.IsDir():
				return &diag.Error{Code: diag.BadArgument, Target: "type", Message: fmt.Sprintf("--type %s does not fit %s", typ, path)}
			case typ != "uri_folder" && typ != "uri_file":
				return &diag.Error{Code: diag.BadArgument, Target: "type", Message: fmt.Sprintf("--type %q: use uri_folder or uri_file (mltable is not supported for batch)", typ)}
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			abs, _ := filepath.Abs(path)
			digest, err := uploadPath(cmd.Context(), c, "data", abs, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			raw, _ := json.Marshal(map[string]any{"type": typ, "path": filepath.Base(abs), "description": description})
			out, err := c.CreateAsset(cmd.Context(), "data", wire.AssetCreate{Name: name, Version: version, Spec: raw, Artifact: digest})
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), out, assetColumns...)
		},
	}
	create.Flags().StringVarP(&name, "name", "n", "", "name")
	create.Flags().StringVarP(&version, "version", "v", "", "version (default: the next whole number)")
	create.Flags().StringVarP(&path, "path", "p", "", "local file or folder")
	create.Flags().StringVarP(&typ, "type", "t", "", "uri_folder or uri_file (default: from the path)")
	create.Flags().StringVarP(&description, "description", "d", "", "description")
	create.MarkFlagRequired("name")
	create.MarkFlagRequired("path")
	cmd.AddCommand(append([]*cobra.Command{create}, assetCommands(g, kindAPI("data"))...)...)
	return cmd
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

// decodeFile strictly decodes a YAML file into v; an error names the file and the fields
// the file may have.
func decodeFile(file string, v any, fields string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return diag.New(diag.BadArgument, "read %s: %v", file, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil {
		return diag.New(diag.BadArgument, "%s: %v (the fields are: %s)", file, err, fields)
	}
	return nil
}
