package cli

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/client"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

var modelColumns = []string{"name", "version", "type", "stage", "path", "created_at"}

func newModelCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "model",
		Short: "Register and manage model versions, referenced as azureml:<name>:<version> or azureml:<name>@latest (az ml model)",
	}
	api := assetAPI{
		get: func(ctx context.Context, c *client.Client, name, version string) (json.RawMessage, error) {
			_, raw, err := c.GetModel(ctx, name, version)
			return raw, err
		},
		list: func(ctx context.Context, c *client.Client, name string) (json.RawMessage, error) {
			return c.ListModels(ctx, name)
		},
		archive: func(ctx context.Context, c *client.Client, name, version string, archived bool) (json.RawMessage, error) {
			return c.ArchiveModel(ctx, name, version, archived)
		},
		columns: modelColumns,
	}
	cmd.AddCommand(append([]*cobra.Command{modelCreate(g), modelDownload(g)}, assetCommands(g, api)...)...)
	return cmd
}

// modelFile is model.yml (model.schema.json).
type modelFile struct {
	Schema      string            `yaml:"$schema"`
	Name        string            `yaml:"name"`
	Version     string            `yaml:"version"`
	Path        string            `yaml:"path"`
	Type        string            `yaml:"type"`
	Description string            `yaml:"description"`
	Tags        map[string]string `yaml:"tags"`
}

func modelCreate(g *globals) *cobra.Command {
	var file string
	var f modelFile
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Register a version of a model from a file or folder (versions are immutable)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			flags := f
			f = modelFile{}
			if file != "" {
				if err := decodeFile(file, &f, "name, version, path, type, description, tags"); err != nil {
					return err
				}
				if f.Path != "" && !filepath.IsAbs(f.Path) {
					f.Path = filepath.Join(filepath.Dir(file), f.Path)
				}
			}
			for _, kv := range [][2]*string{{&f.Name, &flags.Name}, {&f.Version, &flags.Version}, {&f.Path, &flags.Path}, {&f.Type, &flags.Type}, {&f.Description, &flags.Description}} {
				if *kv[1] != "" {
					*kv[0] = *kv[1]
				}
			}
			if f.Name == "" || f.Path == "" {
				return diag.New(diag.BadArgument, "--name and --path are required (or a model YAML with -f)")
			}
			abs, err := filepath.Abs(f.Path)
			if err != nil {
				return err
			}
			if _, err := os.Stat(abs); err != nil {
				return &diag.Error{Code: diag.BadArgument, Target: "path", Message: fmt.Sprintf("model path %s does not exist", abs)}
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			digest, err := uploadPath(cmd.Context(), c, "model", abs, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			out, err := c.CreateModel(cmd.Context(), wire.ModelCreate{Name: f.Name, Version: f.Version, Type: f.Type,
				Description: f.Description, Tags: f.Tags, PathBase: filepath.Base(abs), Artifact: digest})
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), out, modelColumns...)
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "model YAML (name, version, path, type, description, tags)")
	cmd.Flags().StringVarP(&f.Name, "name", "n", "", "model name")
	cmd.Flags().StringVarP(&f.Version, "version", "v", "", "version (default: the next whole number)")
	cmd.Flags().StringVarP(&f.Path, "path", "p", "", "the model file or folder")
	cmd.Flags().StringVarP(&f.Type, "type", "t", "", "custom_model (default), mlflow_model or triton_model")
	cmd.Flags().StringVarP(&f.Description, "description", "d", "", "description")
	return cmd
}

func modelDownload(g *globals) *cobra.Command {
	var name, version, dir string
	cmd := &cobra.Command{
		Use:   "download",
		Short: "Download a model version's files into <download-path>/<name>/",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			m, _, err := c.GetModel(cmd.Context(), name, version)
			if err != nil {
				return err
			}
			data, err := c.DownloadArtifact(cmd.Context(), m.Artifact)
			if err != nil {
				return err
			}
			dst := filepath.Join(dir, m.Name)
			if entries, err := os.ReadDir(dst); err == nil && len(entries) > 0 {
				return diag.New(diag.BadArgument, "%s is not empty: choose another --download-path", dst)
			}
			// A registered folder keeps its name; a single file sits directly in dst.
			target := filepath.Join(dst, m.Path)
			if singleFile(data, m.Path) {
				target = dst
			}
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
			if err := archive.Extract(tar.NewReader(bytes.NewReader(data)), target); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "Downloaded model %s:%s to %s\n", m.Name, m.Version, dst)
			return nil
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "model name")
	cmd.Flags().StringVarP(&version, "version", "v", "latest", "version")
	cmd.Flags().StringVarP(&dir, "download-path", "p", ".", "folder to download into")
	cmd.MarkFlagRequired("name")
	return cmd
}

// singleFile reports whether a model tar holds just one file named base.
func singleFile(data []byte, base string) bool {
	tr := tar.NewReader(bytes.NewReader(data))
	n := 0
	only := ""
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		n++
		only = hdr.Name
	}
	return n == 1 && only == base
}
