package cli

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/artifacts/archive"
	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// modelKind is `berth model` (az ml model): create uploads a file or folder; download
// is its extra verb.
func modelKind() assetKind {
	return assetKind{
		kind:        wire.KindModel,
		short:       "Register and manage model versions, referenced as azureml:<name>:<version> or azureml:<name>@latest (az ml model)",
		createShort: "Register a version of a model from a file or folder (versions are immutable)",
		columns:     []string{"name", "version", "type", "stage", "path", "created_at"},
		createFlags: modelFlags,
		extra:       func(g *globals) []*cobra.Command { return []*cobra.Command{modelDownload(g)} },
	}
}

// assetFile is model.yml (model.schema.json) or data.yml (data.schema.json): the fields
// of `model create` and `data create`, from -f, flags and --set.
type assetFile struct {
	Schema      string            `yaml:"$schema"`
	Name        string            `yaml:"name"`
	Version     string            `yaml:"version"`
	Path        string            `yaml:"path"`
	Type        string            `yaml:"type"`
	Description string            `yaml:"description"`
	Tags        map[string]string `yaml:"tags"`
}

// readAssetFile fills f from the -f file (its relative path taken from the file's
// folder), then from the flags given, then from --set, and checks name and path.
func readAssetFile(file, kind string, flags assetFile, sets []string) (assetFile, error) {
	var f assetFile
	if file != "" {
		if err := decodeFile(file, &f, "name, version, path, type, description, tags"); err != nil {
			return f, err
		}
		if f.Path != "" && !filepath.IsAbs(f.Path) {
			f.Path = filepath.Join(filepath.Dir(file), f.Path)
		}
	}
	overrideWithFlags([2]*string{&f.Name, &flags.Name}, [2]*string{&f.Version, &flags.Version}, [2]*string{&f.Path, &flags.Path},
		[2]*string{&f.Type, &flags.Type}, [2]*string{&f.Description, &flags.Description})
	if err := applySets(&f, sets); err != nil {
		return f, err
	}
	if f.Name == "" || f.Path == "" {
		return f, diag.New(diag.BadArgument, "--name and --path are required (or a %s YAML with -f)", kind)
	}
	return f, nil
}

// modelFlags registers model create's flags; a flag wins over the -f file's field.
func modelFlags(cmd *cobra.Command, sets *[]string) func() (newAsset, error) {
	var file string
	var flags assetFile
	cmd.Flags().StringVarP(&file, "file", "f", "", "model YAML (name, version, path, type, description, tags)")
	cmd.Flags().StringVarP(&flags.Name, "name", "n", "", "model name")
	cmd.Flags().StringVarP(&flags.Version, "version", "v", "", "version (default: the next whole number)")
	cmd.Flags().StringVarP(&flags.Path, "path", "p", "", "the model file or folder")
	cmd.Flags().StringVarP(&flags.Type, "type", "t", "", "custom_model (default), mlflow_model or triton_model")
	cmd.Flags().StringVarP(&flags.Description, "description", "d", "", "description")
	return func() (newAsset, error) {
		f, err := readAssetFile(file, "model", flags, *sets)
		if err != nil {
			return newAsset{}, err
		}
		abs, err := filepath.Abs(f.Path)
		if err != nil {
			return newAsset{}, err
		}
		if _, err = os.Stat(abs); err != nil {
			return newAsset{}, &diag.Error{Code: diag.BadArgument, Target: "path", Message: fmt.Sprintf("model path %s does not exist", abs)}
		}
		req := wire.AssetCreate{Name: f.Name, Version: f.Version, Type: f.Type, Description: f.Description, Tags: f.Tags, PathBase: filepath.Base(abs)}
		return newAsset{req: req, upload: abs}, nil
	}
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
			raw, err := c.GetAsset(cmd.Context(), wire.KindModel, name, version)
			if err != nil {
				return err
			}
			var m wire.Model
			if err := json.Unmarshal(raw, &m); err != nil {
				return fmt.Errorf("decode model %s:%s: %w", name, version, err)
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
