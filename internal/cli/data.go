package cli

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// dataKind is `berth data` (az ml data): create uploads a file or folder and sends its
// type and path as the spec.
func dataKind() assetKind {
	return assetKind{
		kind:        wire.KindData,
		short:       "Register data assets (uri_folder, uri_file) for batch jobs, referenced as azureml:<name>:<version> (az ml data)",
		createShort: "Register a version of a data asset from a local file or folder (uploaded)",
		columns:     assetColumns,
		createFlags: dataFlags,
	}
}

// dataFlags registers data create's flags.
func dataFlags(cmd *cobra.Command, sets *[]string) func() (newAsset, error) {
	var file string
	var flags assetFile
	cmd.Flags().StringVarP(&file, "file", "f", "", "data YAML (name, version, path, type, description)")
	cmd.Flags().StringVarP(&flags.Name, "name", "n", "", "name")
	cmd.Flags().StringVarP(&flags.Version, "version", "v", "", "version (default: the next whole number)")
	cmd.Flags().StringVarP(&flags.Path, "path", "p", "", "local file or folder")
	cmd.Flags().StringVarP(&flags.Type, "type", "t", "", "uri_folder or uri_file (default: from the path)")
	cmd.Flags().StringVarP(&flags.Description, "description", "d", "", "description")
	return func() (newAsset, error) {
		f, err := readAssetFile(file, "data", flags, *sets)
		if err != nil {
			return newAsset{}, err
		}
		name, version, path, typ, description := f.Name, f.Version, f.Path, f.Type, f.Description
		info, err := os.Stat(path)
		if err != nil {
			return newAsset{}, &diag.Error{Code: diag.BadArgument, Target: "path", Message: err.Error()}
		}
		t := typ
		switch {
		case t == "":
			t = "uri_file"
			if info.IsDir() {
				t = "uri_folder"
			}
		case t == "uri_folder" && !info.IsDir(), t == "uri_file" && info.IsDir():
			return newAsset{}, &diag.Error{Code: diag.BadArgument, Target: "type", Message: fmt.Sprintf("--type %s does not fit %s", t, path)}
		case t != "uri_folder" && t != "uri_file":
			return newAsset{}, &diag.Error{Code: diag.BadArgument, Target: "type", Message: fmt.Sprintf("--type %q: use uri_folder or uri_file (mltable is not supported for batch)", t)}
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return newAsset{}, err
		}
		raw, err := json.Marshal(map[string]any{"type": t, "path": filepath.Base(abs), "description": description})
		if err != nil {
			return newAsset{}, fmt.Errorf("encode data asset: %w", err)
		}
		return newAsset{req: wire.AssetCreate{Name: name, Version: version, Tags: f.Tags, Spec: raw}, upload: abs}, nil
	}
}
