package cli

import (
	"bytes"
	"os"

	"github.com/spf13/cobra"
	"go.yaml.in/yaml/v3"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

// assetKind describes one kind of registered asset (model, environment, data):
// newAssetCommand builds its noun with the verbs every kind shares.
type assetKind struct {
	kind        string   // wire.KindModel, wire.KindEnvironment or wire.KindData; also the noun
	short       string   // the noun's help line
	createShort string   // create's help line
	columns     []string // the fields -o table shows
	// createFlags registers create's flags on cmd and returns the function that, once
	// they are parsed, reads them (and any -f file), then applies *sets, into the asset
	// to register.
	createFlags func(cmd *cobra.Command, sets *[]string) func() (newAsset, error)
	// extra builds the verbs only this kind has (nil for none).
	extra func(g *globals) []*cobra.Command
}

// newAsset is what create registers: the request and, unless upload is "", the
// absolute path of the file or folder uploaded first as its artifact.
type newAsset struct {
	req    wire.AssetCreate
	upload string
}

// newAssetCommand builds the noun of an asset kind: create, show, list, archive,
// restore and the kind's extra verbs.
func newAssetCommand(g *globals, k assetKind) *cobra.Command {
	cmd := &cobra.Command{Use: k.kind, Short: k.short}
	cmd.AddCommand(assetCreate(g, k), assetShow(g, k), assetList(g, k), assetArchive(g, k, true), assetArchive(g, k, false))
	if k.extra != nil {
		cmd.AddCommand(k.extra(g)...)
	}
	return cmd
}

func assetCreate(g *globals, k assetKind) *cobra.Command {
	cmd := &cobra.Command{Use: "create", Short: k.createShort, Args: cobra.NoArgs}
	var sets []string
	unsupported := addSetFlags(cmd, &sets)
	read := k.createFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		a, err := read()
		if err != nil {
			return err
		}
		c, err := g.connect()
		if err != nil {
			return err
		}
		if a.upload != "" {
			if a.req.Artifact, err = uploadPath(cmd.Context(), c, k.kind, a.upload, cmd.ErrOrStderr()); err != nil {
				return err
			}
		}
		out, err := c.CreateAsset(cmd.Context(), k.kind, a.req)
		if err != nil {
			return err
		}
		return g.print(cmd.OutOrStdout(), out, k.columns...)
	}
	return cmd
}

func assetShow(g *globals, k assetKind) *cobra.Command {
	var name, version, label string
	var web bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a version (--label latest for the newest not archived)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v, err := assetVersion(version, label)
			if err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			if web {
				return printWeb(cmd, c.BaseURL(), "assets/"+k.kind)
			}
			raw, err := c.GetAsset(cmd.Context(), k.kind, name, v)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, k.columns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "name")
	cmd.Flags().StringVarP(&version, "version", "v", "", "version")
	cmd.Flags().StringVarP(&label, "label", "l", "", "latest")
	addWeb(cmd, &web)
	cmd.MarkFlagRequired("name")
	return cmd
}

func assetList(g *globals, k assetKind) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List them, or the versions of one with --name",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			raw, err := c.ListAssets(cmd.Context(), k.kind, name)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, k.columns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "name")
	return cmd
}

// assetArchive builds archive (archived true) or restore.
func assetArchive(g *globals, k assetKind, archived bool) *cobra.Command {
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
			raw, err := c.ArchiveAsset(cmd.Context(), k.kind, name, version, archived)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw, k.columns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "name")
	cmd.Flags().StringVarP(&version, "version", "v", "", "version")
	cmd.MarkFlagRequired("name")
	cmd.MarkFlagRequired("version")
	return cmd
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

// overrideWithFlags sets each *pair[0] (a file's value) to *pair[1] (the flag's) when
// the flag was given: flags win over the -f file.
func overrideWithFlags(pairs ...[2]*string) {
	for _, p := range pairs {
		if *p[1] != "" {
			*p[0] = *p[1]
		}
	}
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
