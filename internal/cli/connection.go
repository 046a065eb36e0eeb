package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/diag"
	"github.com/berthml/berth/internal/wire"
)

var connectionColumns = []string{"name", "type", "target", "credentials"}

func newConnectionCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "connection",
		Short: "Manage connections: secrets that environment_variables reference as ${{azureml://connections/<name>/credentials/<key>}}",
	}
	cmd.AddCommand(connectionCreate(g), connectionShow(g), connectionList(g), connectionDelete(g))
	return cmd
}

// pairs parses repeated key=value flags.
func pairs(flag string, values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		k, val, ok := strings.Cut(v, "=")
		if !ok || k == "" {
			return nil, diag.New(diag.BadArgument, "--%s %q: write it as key=value", flag, v)
		}
		out[k] = val
	}
	return out, nil
}

func connectionCreate(g *globals) *cobra.Command {
	var file string
	var conn wire.Connection
	var creds, meta, sets []string
	cmd := &cobra.Command{
		Use:   "create",
		Short: "Create or replace a connection; credentials are encrypted at rest and never printed",
		Args:  cobra.NoArgs,
	}
	unsupported := addSetFlags(cmd, &sets)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		if err := unsupported(); err != nil {
			return err
		}
		name, typ, target := conn.Name, conn.Type, conn.Target
		if file != "" {
			if err := decodeFile(file, &conn, "name, type, target, metadata, credentials"); err != nil {
				return err
			}
		}
		if name != "" {
			conn.Name = name
		}
		if typ != "" {
			conn.Type = typ
		}
		if target != "" {
			conn.Target = target
		}
		c2, err := pairs("credential", creds)
		if err != nil {
			return err
		}
		m2, err := pairs("metadata", meta)
		if err != nil {
			return err
		}
		if conn.Credentials == nil {
			conn.Credentials = map[string]string{}
		}
		if conn.Metadata == nil {
			conn.Metadata = map[string]string{}
		}
		for k, v := range c2 {
			conn.Credentials[k] = v
		}
		for k, v := range m2 {
			conn.Metadata[k] = v
		}
		if err := applySets(&conn, sets); err != nil {
			return err
		}
		c, err := g.connect()
		if err != nil {
			return err
		}
		out, err := c.PutConnection(cmd.Context(), conn)
		if err != nil {
			return err
		}
		return g.print(cmd.OutOrStdout(), out, connectionColumns...)
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "connection YAML: name, type, target, metadata, credentials")
	cmd.Flags().StringVarP(&conn.Name, "name", "n", "", "connection name")
	cmd.Flags().StringVar(&conn.Type, "type", "", "connection type, e.g. custom")
	cmd.Flags().StringVar(&conn.Target, "target", "", "the service's address")
	cmd.Flags().StringArrayVar(&creds, "credential", nil, "a secret as key=value (repeatable)")
	cmd.Flags().StringArrayVar(&meta, "metadata", nil, "a public setting as key=value (repeatable)")
	return cmd
}

func connectionShow(g *globals) *cobra.Command {
	var name string
	var web bool
	cmd := &cobra.Command{
		Use:   "show",
		Short: "Show a connection (credential values are masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			if web {
				return printWeb(cmd, c.BaseURL(), "")
			}
			out, err := c.GetConnection(cmd.Context(), name)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), out, connectionColumns...)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "connection name")
	addWeb(cmd, &web)
	cmd.MarkFlagRequired("name")
	return cmd
}

func connectionList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List connections (credential values are masked)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := g.connect()
			if err != nil {
				return err
			}
			out, err := c.ListConnections(cmd.Context())
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), out, connectionColumns...)
		},
	}
}

func connectionDelete(g *globals) *cobra.Command {
	var name string
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete",
		Short: "Delete a connection",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := confirm(cmd, yes, fmt.Sprintf("Delete connection %q?", name)); err != nil {
				return err
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			return c.DeleteConnection(cmd.Context(), name)
		},
	}
	cmd.Flags().StringVarP(&name, "name", "n", "", "connection name")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	cmd.MarkFlagRequired("name")
	return cmd
}
