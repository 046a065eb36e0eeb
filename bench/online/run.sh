#!/usr/bin/env bash
# Berth online benchmark: the same score.py served by
#   (a) Berth through the router, with an endpoint key,
#   (b) Berth's instance (berth inference-server) directly,
#   (c) Flask under gunicorn sync workers (the Azure inference server's architecture),
# with the same worker count, driven by wrk at fixed concurrency for a fixed time.
# Needs: go, wrk, gunicorn, python3-flask (and python3-sklearn for the sklearn rows).
#   bash bench/online/run.sh            # BENCH_DURATION=10s BENCH_CONNS=8 BENCH_WORKERS=1
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
duration="${BENCH_DURATION:-10s}"
conns="${BENCH_CONNS:-8}"
workers="${BENCH_WORKERS:-1}"
py=/usr/bin/python3
for tool in wrk gunicorn; do
  command -v "$tool" >/dev/null || { echo "missing $tool: apt-get install -y wrk gunicorn python3-flask python3-sklearn" >&2; exit 1; }
done
work="$(mktemp -d)"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

(cd "$repo" && go build -o "$work/berth" ./cmd/berth)
berth="$work/berth"
export BERTH_DATA_DIR="$work/data"

free_port() { "$py" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'; }
wait_http() { for _ in $(seq 1 200); do curl -fsS "$1" >/dev/null 2>&1 && return 0; sleep 0.05; done; echo "no answer from $1" >&2; return 1; }

# load NAME URL KEY: runs wrk and prints "NAME rps p50 p99 non2xx".
load() {
  local out
  out=$(BENCH_BODY="$body" BENCH_KEY="$3" wrk -t"$(( conns < 2 ? 1 : 2 ))" -c"$conns" -d"$duration" --latency -s "$here/post.lua" "$2")
  local rps p50 p99 bad
  rps=$(echo "$out" | awk '/^Requests\/sec/ {print $2}')
  p50=$(echo "$out" | awk '$1=="50%" {print $2}')
  p99=$(echo "$out" | awk '$1=="99%" {print $2}')
  bad=$(echo "$out" | awk '/Non-2xx/ {print $NF}')
  echo "$1 $rps $p50 $p99 ${bad:-0}"
}

# to_us converts wrk's 1.23ms / 456.00us / 1.2s into microseconds.
to_us() { awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n*1000; else if (v ~ /s$/) print n*1000000; else print n }'; }

"$berth" serve --addr 127.0.0.1:0 --python "$py" --endpoint-rps 0 --log-level warn &
pids+=($!)
for _ in $(seq 1 100); do [ -f "$BERTH_DATA_DIR/server.json" ] && break; sleep 0.05; done
server=$("$py" -c 'import json,sys; print(json.load(open(sys.argv[1]))["url"])' "$BERTH_DATA_DIR/server.json")

# bench_model LABEL CODE_DIR MODEL_DIR BODY
bench_model() {
  local label=$1 code=$2 model=$3
  body=$4
  local ep="bench-$label"
  mkdir -p "$work/$label"
  cat > "$work/$label/endpoint.yml" <<YML
name: $ep
YML
  cat > "$work/$label/deployment.yml" <<YML
name: blue
endpoint_name: $ep
model: {path: $model}
code_configuration: {code: $code, scoring_script: score.py}
instance_count: 1
environment_variables: {WORKER_COUNT: "$workers"}
request_settings: {max_concurrent_requests_per_instance: $conns, request_timeout_ms: 60000}
YML
  "$berth" online-endpoint create -f "$work/$label/endpoint.yml" >/dev/null
  "$berth" online-deployment create -f "$work/$label/deployment.yml" --all-traffic >/dev/null 2>"$work/$label.deploy.log" || { cat "$work/$label.deploy.log" >&2; exit 1; }
  local key
  key=$("$berth" online-endpoint get-credentials -n "$ep" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["primaryKey"])')
  local modeldir
  modeldir=$(dirname "$model")

  local ip; ip=$(free_port)
  "$berth" inference-server --entry_script "$code/score.py" --model_dir "$modeldir" --port "$ip" --host 127.0.0.1 --worker_count "$workers" --python "$py" >"$work/$label.instance.log" 2>&1 &
  pids+=($!)
  wait_http "http://127.0.0.1:$ip/"

  local gp; gp=$(free_port)
  (cd "$here" && AZUREML_MODEL_DIR="$modeldir" BENCH_SCRIPT="$code/score.py" exec gunicorn --workers "$workers" --worker-class sync \
     --bind "127.0.0.1:$gp" --log-level warning flask_app:app >/dev/null 2>&1) &
  pids+=($!)
  wait_http "http://127.0.0.1:$gp/"

  # Warm up each target briefly, then measure one after another.
  for url in "$server/endpoints/$ep/score" "http://127.0.0.1:$ip/score" "http://127.0.0.1:$gp/score"; do
    BENCH_BODY="$body" BENCH_KEY="$key" wrk -t1 -c2 -d1s -s "$here/post.lua" "$url" >/dev/null
  done
  load "a" "$server/endpoints/$ep/score" "$key" > "$work/$label.a"
  load "b" "http://127.0.0.1:$ip/score" "" > "$work/$label.b"
  load "c" "http://127.0.0.1:$gp/score" "" > "$work/$label.c"

  read -r _ ra pa qa ba < "$work/$label.a"
  read -r _ rb pb qb bb < "$work/$label.b"
  read -r _ rc pc qc bc < "$work/$label.c"
  printf '%-10s %-34s %10s %10s %10s %7s\n' "$label" "(a) Berth router + key" "$ra" "$pa" "$qa" "$ba"
  printf '%-10s %-34s %10s %10s %10s %7s\n' "$label" "(b) Berth instance direct" "$rb" "$pb" "$qb" "$bb"
  printf '%-10s %-34s %10s %10s %10s %7s\n' "$label" "(c) Flask + gunicorn sync" "$rc" "$pc" "$qc" "$bc"
  # One connection: the latency a single request sees, without queueing behind others.
  local conns_saved=$conns
  conns=1
  load "a1" "$server/endpoints/$ep/score" "$key" > "$work/$label.a1"
  load "b1" "http://127.0.0.1:$ip/score" "" > "$work/$label.b1"
  conns=$conns_saved
  read -r _ _ pa1 _ _ < "$work/$label.a1"
  read -r _ _ pb1 _ _ < "$work/$label.b1"
  local ua ub ua1 ub1
  ua=$(to_us "$pa"); ub=$(to_us "$pb"); ua1=$(to_us "$pa1"); ub1=$(to_us "$pb1")
  awk -v ra="$ra" -v rb="$rb" -v rc="$rc" -v ua="$ua" -v ub="$ub" -v ua1="$ua1" -v ub1="$ub1" -v c="$conns" -v l="$label" 'BEGIN {
    printf "%-10s ratios: (a)/(c) = %.2fx [target >= 5x]  (a)/(b) = %.2f\n", l, ra/rc, ra/rb
    printf "%-10s router p50 overhead: %+.0f us at 1 connection (p50 %.0f vs %.0f us) [target <= 150 us]; %+.0f us at %d connections\n", l, ua1-ub1, ua1, ub1, ua-ub, c }'
}

echo "Berth online benchmark: $(nproc) cores, workers=$workers, wrk -t2 -c$conns -d$duration, $(date -u +%Y-%m-%dT%H:%MZ)"
printf '%-10s %-34s %10s %10s %10s %7s\n' model target "req/s" p50 p99 non2xx
bench_model trivial "$here/trivial" "$here/trivial/score.py" '{"data": [[1, 2, 3, 4], [0, 0, 0, 0]]}'
if "$py" -c 'import sklearn, joblib' 2>/dev/null; then
  bench_model sklearn "$repo/examples/sklearn-regression/onlinescoring" "$repo/examples/sklearn-regression/model" \
    "$(cat "$repo/examples/sklearn-regression/sample-request.json")"
else
  echo "sklearn rows skipped: apt-get install -y python3-sklearn"
fi
