#!/usr/bin/env bash
# Berth batch benchmark: a batch job over BENCH_FILES small CSV files (trivial run(),
# mini_batch_size BENCH_MB, BENCH_WORKERS workers) against a Python
# multiprocessing.Pool making the same per-mini-batch calls (baseline.py).
# Berth's files/s counts the job's run (progress.files_per_second: from listing the
# input and starting the workers to the merged output); the wall time from invoke to
# the end of `job stream` (environment, copies, polling) is reported too. The input is
# registered as a data asset first, so its upload is not counted.
# Run it on a quiet machine.   bash bench/batch/run.sh   # BENCH_FILES=10000 BENCH_MB=10 BENCH_WORKERS=2 BENCH_REPEAT=7
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
files="${BENCH_FILES:-10000}"
mb="${BENCH_MB:-10}"
workers="${BENCH_WORKERS:-2}"
repeat="${BENCH_REPEAT:-7}"
py=/usr/bin/python3
work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT
echo "machine: nproc=$(nproc), $(uname -sr), $($py --version)"
echo "files=$files mini_batch_size=$mb workers=$workers"

mkdir -p "$work/data" "$work/code" "$work/model"
$py - "$work/data" "$files" <<'PY'
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
for i in range(n):
    with open(os.path.join(d, f"f{i:06d}.csv"), "w") as f:
        f.write("a,b\n1,2\n3,4\n")
PY
cp "$here/score.py" "$work/code/score.py"
echo 1 > "$work/model/m.txt"

(cd "$repo" && go build -o "$work/berth" ./cmd/berth)
berth="$work/berth"
export BERTH_DATA_DIR="$work/berthdata"
"$berth" serve --addr 127.0.0.1:0 --log-level warn --python "$py" &
server_pid=$!
for _ in $(seq 1 100); do [ -f "$BERTH_DATA_DIR/server.json" ] && break; sleep 0.1; done
cat > "$work/deployment.yml" <<YML
name: bench
endpoint_name: bench
type: model
model: {path: ./model}
code_configuration: {code: ./code, scoring_script: score.py}
compute: azureml:cpu
resources: {instance_count: 1}
settings: {max_concurrency_per_instance: $workers, mini_batch_size: $mb, output_action: append_row}
YML
"$berth" compute create -n cpu --type amlcompute --max-instances 1 -o none
"$berth" batch-endpoint create -n bench -o none
"$berth" batch-deployment create -f "$work/deployment.yml" --set-default -o none
# The input is registered beforehand, as a data asset, so no job includes the upload.
"$berth" data create -n benchdata --type uri_folder --path "$work/data" -o none

# BENCH_REPEAT rounds, each a baseline run then a Berth job, so both see the same
# machine; the medians are compared. The baseline is timed as the whole process, as a
# user runs it (Python's start included, as Berth's workers' is), and inside the script.
: > "$work/base_proc"; : > "$work/base_in"; : > "$work/berth_run"; : > "$work/berth_wall"
for round in $(seq 1 "$repeat"); do
  b0=$(date +%s.%N)
  base=$($py "$here/baseline.py" "$work/code/score.py" "$work/data" "$work/baseline.out" "$workers" "$mb")
  b1=$(date +%s.%N)
  echo "$base" | sed -E 's/.*: ([0-9.]+) files\/s/\1/' >> "$work/base_in"
  $py -c "import sys; print(int(sys.argv[1])/(float(sys.argv[3])-float(sys.argv[2])))" "$files" "$b0" "$b1" >> "$work/base_proc"
  t0=$(date +%s.%N)
  job=$("$berth" batch-endpoint invoke -n bench --input azureml:benchdata@latest --query name -o tsv)
  "$berth" job stream -n "$job" >/dev/null 2>&1
  t1=$(date +%s.%N)
  status=$("$berth" job show -n "$job" --query status -o tsv)
  [ "$status" = "Completed" ] || { echo "job $job ended $status" >&2; exit 1; }
  # The job's run: from batch.Run's start (listing, worker start, init()) to its end.
  "$berth" job show -n "$job" --query progress.files_per_second -o tsv >> "$work/berth_run"
  $py -c "import sys; print(int(sys.argv[1])/(float(sys.argv[3])-float(sys.argv[2])))" "$files" "$t0" "$t1" >> "$work/berth_wall"
  rows=$(wc -l < "$BERTH_DATA_DIR/jobs/$job/outputs/score/predictions.csv")
  [ "$rows" = "$files" ] || { echo "job $job wrote $rows rows, want $files" >&2; exit 1; }
  echo "round $round: baseline $(tail -1 "$work/base_proc" | cut -d. -f1) files/s, Berth $(tail -1 "$work/berth_run" | cut -d. -f1) files/s"
done
median() { $py -c "import statistics,sys; print(round(statistics.median(float(l) for l in open(sys.argv[1]))))" "$1"; }
base_proc_fps=$(median "$work/base_proc"); base_fps=$(median "$work/base_in")
berth_fps=$(median "$work/berth_run"); wall_fps=$(median "$work/berth_wall")
echo
printf '%-44s %10s\n' "target (median of $repeat rounds)" "files/s"
printf '%-44s %10s\n' "baseline Pool($workers), whole process" "$base_proc_fps"
printf '%-44s %10s\n' "baseline Pool($workers), inside the script" "$base_fps"
printf '%-44s %10s\n' "Berth job (its run, listing to output)" "$berth_fps"
printf '%-44s %10s\n' "Berth job (invoke..stream end, wall)" "$wall_fps"
ratio() { $py -c "import sys; print(f'{float(sys.argv[1])/float(sys.argv[2]):.2f}')" "$1" "$2"; }
echo "ratio Berth/baseline (whole process) = $(ratio "$berth_fps" "$base_proc_fps")x [target >= 0.9x]; against the Pool's own time: $(ratio "$berth_fps" "$base_fps")x"
