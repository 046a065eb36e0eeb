#!/usr/bin/env bash
# Berth's main job end to end: build berth, start a server on a temporary data dir,
# deploy this folder's endpoint and deployment, score sample-request.json, stop.
# Needs only Go and python3.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
work="$(mktemp -d)"
export BERTH_DATA_DIR="$work/data"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

echo "==> building berth"
(cd "$repo" && go build -o "$work/berth" ./cmd/berth)
berth="$work/berth"

echo "==> starting berth serve (data dir $BERTH_DATA_DIR)"
"$berth" serve --addr 127.0.0.1:0 --log-level warn &
server_pid=$!
for _ in $(seq 1 100); do
  [ -f "$BERTH_DATA_DIR/server.json" ] && break
  kill -0 "$server_pid" 2>/dev/null || { echo "berth serve exited; see the messages above" >&2; exit 1; }
  sleep 0.1
done

echo "==> berth online-endpoint create -f endpoint.yml"
"$berth" online-endpoint create -f "$here/endpoint.yml" -o table
echo "==> berth online-deployment create -f blue-deployment.yml --all-traffic"
"$berth" online-deployment create -f "$here/blue-deployment.yml" --all-traffic -o table
echo "==> berth online-endpoint invoke -n quickstart --request-file sample-request.json"
"$berth" online-endpoint invoke -n quickstart --request-file "$here/sample-request.json"

# Batch: the same server scores a folder of CSV files as a batch job (examples/batch).
batch="$repo/examples/batch"
echo "==> berth compute create -n batch-cluster --type amlcompute --max-instances 2"
"$berth" compute create -n batch-cluster --type amlcompute --min-instances 0 --max-instances 2 -o table
echo "==> berth batch-endpoint create -f ../batch/endpoint.yml"
"$berth" batch-endpoint create -f "$batch/endpoint.yml" -o table
echo "==> berth batch-deployment create -f ../batch/deployment.yml --set-default"
"$berth" batch-deployment create -f "$batch/deployment.yml" --set-default -o table
echo "==> berth batch-endpoint invoke -n batch-quickstart --input ../batch/data"
job=$("$berth" batch-endpoint invoke -n batch-quickstart --input "$batch/data" --query name -o tsv)
echo "==> berth job stream -n $job"
"$berth" job stream -n "$job"
echo "==> berth job download -n $job --output-name score"
"$berth" job download -n "$job" --output-name score --download-path "$work/out"
echo "==> first rows of named-outputs/score/predictions.csv (file, row, prediction)"
head -n 5 "$work/out/named-outputs/score/predictions.csv"
