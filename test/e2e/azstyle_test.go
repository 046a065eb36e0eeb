//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// azStyleScript is a deployment script as an Azure ML user writes it, run with az
// mapped to berth: every line must work unchanged.
const azStyleScript = `set -euo pipefail
az() { shift; "$BERTH" "$@"; }
E=azstyle-ep

az ml online-endpoint create -n $E -g my-rg -w my-ws
az ml online-deployment create --name blue --endpoint $E -f "$EXAMPLES/quickstart/blue-deployment.yml" --set endpoint_name=$E --all-traffic

STATE=$(az ml online-endpoint show -n $E --query provisioning_state -o tsv)
echo "state: $STATE"
[ "$STATE" = Succeeded ]

az ml online-deployment update --name blue --endpoint-name $E --set instance_count=2
COUNT=$(az ml online-deployment show --name blue --endpoint $E --query instance_count -o tsv)
echo "instance_count: $COUNT"
[ "$COUNT" = 2 ]
READY=$(az ml online-deployment show -n blue -e $E --query "length(instances[?state=='Ready'])" -o tsv)
echo "ready instances: $READY"
[ "$READY" = 2 ]

KEY=$(az ml online-endpoint get-credentials -n $E -o tsv --query primaryKey)
SCORING_URI=$(az ml online-endpoint show -n $E --query scoring_uri -o tsv)
OUT=$(curl -sS --fail -H "Authorization: Bearer $KEY" -H "Content-Type: application/json" \
  -d @"$EXAMPLES/quickstart/sample-request.json" "$SCORING_URI")
echo "prediction: $OUT"
[ "$OUT" = "[7.0, 1.5]" ]
OUT=$(az ml online-endpoint invoke --name $E --deployment blue --request-file "$EXAMPLES/quickstart/sample-request.json")
[ "$OUT" = "[7.0, 1.5]" ]

az ml online-deployment get-logs -g my-rg -w my-ws -e $E -n blue --lines 20 > /dev/null

az ml online-endpoint delete -n $E --yes --no-wait
LEFT=$(az ml online-endpoint list --query "[?name=='$E'] | length(@)" -o tsv)
[ "$LEFT" = 0 ]
echo "az-style script done"
`

func TestAzStyleScript(t *testing.T) {
	s := startServer(t, "")
	cmd := exec.Command("bash", "-c", azStyleScript)
	// Only this server: the caller's other BERTH_* settings stay out.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "BERTH_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "BERTH="+berthBin, "BERTH_DATA_DIR="+s.dataDir, "BERTH_SERVER="+s.URL, "EXAMPLES="+example())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("az-style script: %v\n%s", err, out)
	}
	t.Logf("script output:\n%s", out)
	if !strings.Contains(string(out), "az-style script done") {
		t.Fatalf("the script stopped early:\n%s", out)
	}
}
