//go:build unix

package e2e

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// azStyleScript is a deployment script as an Azure ML user writes it, run with az
// mapped to berth: every line must work unchanged. $LOCAL is "" or "--local": with
// --local every endpoint and deployment command acts on a local endpoint, which the
// script scores with no key at all, and which managed commands do not see.
const azStyleScript = `set -euo pipefail
az() { shift; "$BERTH" "$@"; }
E=azstyle-ep
HEADERS=$(mktemp)

az ml online-endpoint create -n $E -g my-rg -w my-ws $LOCAL
az ml online-deployment create --name blue --endpoint $E -f "$EXAMPLES/quickstart/blue-deployment.yml" --set endpoint_name=$E --all-traffic $LOCAL

STATE=$(az ml online-endpoint show -n $E --query provisioning_state -o tsv $LOCAL)
echo "state: $STATE"
[ "$STATE" = Succeeded ]

az ml online-deployment update --name blue --endpoint-name $E --set instance_count=2 $LOCAL
COUNT=$(az ml online-deployment show --name blue --endpoint $E --query instance_count -o tsv $LOCAL)
echo "instance_count: $COUNT"
[ "$COUNT" = 2 ]
READY=$(az ml online-deployment show -n blue -e $E --query "length(instances[?state=='Ready'])" -o tsv $LOCAL)
echo "ready instances: $READY"
[ "$READY" = 2 ]

AUTH=()
if [ -z "$LOCAL" ]; then
  KEY=$(az ml online-endpoint get-credentials -n $E -o tsv --query primaryKey)
  AUTH=(-H "Authorization: Bearer $KEY")
else
  # A local endpoint has no key to get, and the managed namespace does not see it.
  ERR=$(az ml online-endpoint get-credentials -n $E $LOCAL 2>&1 >/dev/null || true)
  echo "get-credentials --local: $ERR"
  [[ "$ERR" == *"need no key"* ]]
  ERR=$(az ml online-endpoint show -n $E 2>&1 >/dev/null || true)
  echo "show without --local: $ERR"
  [[ "$ERR" == *"add --local"* ]]
  [ "$(az ml online-endpoint list --query "[?name=='$E'] | length(@)" -o tsv)" = 0 ]
  [ "$(az ml online-endpoint show -n $E --query local -o tsv $LOCAL)" = true ]
fi
SCORING_URI=$(az ml online-endpoint show -n $E --query scoring_uri -o tsv $LOCAL)
OUT=$(curl -sS --fail ${AUTH[@]+"${AUTH[@]}"} -H "Content-Type: application/json" \
  -d @"$EXAMPLES/quickstart/sample-request.json" "$SCORING_URI")
echo "prediction: $OUT"
[ "$OUT" = "[7.0, 1.5]" ]
OUT=$(az ml online-endpoint invoke --name $E --deployment blue --request-file "$EXAMPLES/quickstart/sample-request.json" $LOCAL)
[ "$OUT" = "[7.0, 1.5]" ]

# Blue/green: a second deployment takes a mirrored share first, then the live traffic.
az ml online-deployment create --name green --endpoint $E -f "$EXAMPLES/quickstart/blue-deployment.yml" --set name=green --set endpoint_name=$E $LOCAL > /dev/null
az ml online-endpoint update -n $E --mirror-traffic "green=10" $LOCAL > /dev/null
[ "$(az ml online-endpoint show -n $E --query mirror_traffic.green -o tsv $LOCAL)" = 10 ]
az ml online-endpoint update -n $E --mirror-traffic "green=0" $LOCAL > /dev/null
az ml online-endpoint update -n $E --traffic "blue=0 green=100" $LOCAL > /dev/null
[ "$(az ml online-endpoint show -n $E --query traffic.green -o tsv $LOCAL)" = 100 ]
OUT=$(curl -sS --fail -D "$HEADERS" ${AUTH[@]+"${AUTH[@]}"} -H "Content-Type: application/json" \
  -d @"$EXAMPLES/quickstart/sample-request.json" "$SCORING_URI")
[ "$OUT" = "[7.0, 1.5]" ]
grep -qi "^azureml-model-deployment: green" "$HEADERS"

az ml online-deployment get-logs -g my-rg -w my-ws -e $E -n blue --lines 20 $LOCAL > /dev/null

az ml online-endpoint delete -n $E --yes --no-wait $LOCAL
LEFT=$(az ml online-endpoint list --query "[?name=='$E'] | length(@)" -o tsv $LOCAL)
[ "$LEFT" = 0 ]
if [ -n "$LOCAL" ]; then
  # As in az ml, online-deployment create --local creates a missing local endpoint.
  az ml online-deployment create -n blue -e auto-$E -f "$EXAMPLES/quickstart/blue-deployment.yml" --set endpoint_name=auto-$E $LOCAL > /dev/null
  [ "$(az ml online-endpoint show -n auto-$E --query local -o tsv $LOCAL)" = true ]
  az ml online-endpoint delete -n auto-$E --yes $LOCAL
fi
echo "az-style script done"
`

// TestAzStyleScript runs the script against managed endpoints, then again with
// --local on every endpoint and deployment command and no key.
func TestAzStyleScript(t *testing.T) {
	for _, tc := range []struct{ name, local string }{
		{"managed", ""},
		{"local", "--local"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := startServer(t, "")
			cmd := exec.Command("bash", "-c", azStyleScript)
			// Only this server: the caller's other BERTH_* settings stay out.
			for _, kv := range os.Environ() {
				if !strings.HasPrefix(kv, "BERTH_") {
					cmd.Env = append(cmd.Env, kv)
				}
			}
			cmd.Env = append(cmd.Env, "BERTH="+berthBin, "BERTH_DATA_DIR="+s.dataDir, "BERTH_SERVER="+s.URL,
				"EXAMPLES="+example(), "LOCAL="+tc.local)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("az-style script: %v\n%s", err, out)
			}
			t.Logf("script output:\n%s", out)
			if !strings.Contains(string(out), "az-style script done") {
				t.Fatalf("the script stopped early:\n%s", out)
			}
		})
	}
}
