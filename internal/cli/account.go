package cli

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/berthml/berth/internal/diag"
)

// newAccountCommand is `berth account`: Berth stands in for the identity provider of
// `az account`, so scripts that fetch an Entra token keep working.
func newAccountCommand(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "account",
		Short: "Access tokens of the server's admin identity, as `az account` gives Entra tokens",
	}
	cmd.AddCommand(accountGetAccessToken(g))
	return cmd
}

func accountGetAccessToken(g *globals) *cobra.Command {
	var resource, scope string
	cmd := &cobra.Command{
		Use:   "get-access-token",
		Short: "Print a bearer token of the server's admin identity (1 h), accepted by aad_token endpoints and the control plane",
		Long: `Print a bearer token of the server's admin identity, shaped like 'az account get-access-token'.
aad_token endpoints accept it for scoring, and the control-plane API accepts it besides
the admin token. Tokens for https://ml.azure.com or Azure Resource Manager (the default)
are accepted; a token for another resource is refused with 401.

  TOKEN=$(berth account get-access-token --resource https://ml.azure.com --query accessToken -o tsv)
  curl -H "Authorization: Bearer $TOKEN" -d @request.json $SCORING_URI`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if resource != "" && scope != "" {
				return diag.New(diag.BadArgument, "--resource and --scope: give one of them")
			}
			if scope != "" {
				resource = scope
			}
			c, err := g.connect()
			if err != nil {
				return err
			}
			tok, err := c.AccessToken(cmd.Context(), resource)
			if err != nil {
				return err
			}
			raw, err := json.Marshal(tok)
			if err != nil {
				return err
			}
			return g.print(cmd.OutOrStdout(), raw)
		},
	}
	cmd.Flags().StringVar(&resource, "resource", "", "the resource the token is for (default: Azure Resource Manager, as az)")
	cmd.Flags().StringVar(&scope, "scope", "", "the scope the token is for, such as https://ml.azure.com/.default (instead of --resource)")
	cmd.Flags().String("tenant", "", "accepted for az compatibility and ignored: one Berth server is one tenant")
	return cmd
}
