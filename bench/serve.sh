#!/usr/bin/env bash
# Registry server benchmark (issue 9): `airlock serve --store` against Debian's docker-registry
# (the CNCF distribution registry, 2.8) on the same machine, in one run, the server that goes first
# alternating from round to round.
#
# Cases, each on a freshly started server with empty storage:
#   ingest    airlock push LAYOUT --to HOST  (the ~600 MB make-images.py set: 45 refs, 22 repos,
#             OCI and Docker types, an index and a manifest list); the same client for both servers,
#             so the difference is the server's
#   pull      skopeo copy --all docker://HOST/REF oci:DIR:REF for every ref (one layout)
#   parallel  8 concurrent curl GETs of one 256 MiB blob (uploaded once with curl), aggregate GiB/s
# For each: wall time of the client, the server's CPU seconds (utime+stime from /proc) during the
# case, and the server's peak RSS (VmHWM) at its end. Targets (issue 9): ingest ≥ 1.5× docker-registry's
# throughput, pull ≥ 1.0×, parallel ≥ 1 GiB/s, server CPU ≤ 0.5×, RSS ≤ 64 MiB.
#
# Then the archive case: a ~2 GB OCI layout (make-images.py --budget-mb 2048) tarred into one .tar,
# served in place by `airlock serve ARCHIVE`: time from spawn until /v2/ answers (target < 1 s), and
# the free disk before and after (target: no extra disk).
#
# Usage: bench/serve.sh      env: RUNS (3), BUDGET_MB (600), BIG_MB (2048), PORT_DIST (15510),
#   PORT_AIRLOCK (15511), PROFILE (release)
# Output: bench/data/serve/runs.tsv and bench/data/serve/summary.md (copied into bench/RESULTS.md by hand).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-3}
BUDGET_MB=${BUDGET_MB:-600}
BIG_MB=${BIG_MB:-2048}
SEED=42
PORT_DIST=${PORT_DIST:-15510}
PORT_AIRLOCK=${PORT_AIRLOCK:-15511}
TOOLS=${TOOLS:-$ROOT/../shared/tools}
DATA=$ROOT/bench/data/serve
export INFRA_DIR=$DATA/registry-lab
PROFILE=${PROFILE:-release}
AIRLOCK=$ROOT/target/$PROFILE/airlock
TSV=$DATA/runs.tsv
LOGS=$DATA/logs

for tool in skopeo docker-registry curl; do
  command -v "$tool" >/dev/null || { apt-get install -y docker-registry skopeo curl >&2; break; }
done
mkdir -p "$DATA" "$LOGS"
echo "== build" >&2
cargo build --locked --profile "$PROFILE" --quiet
echo "== image set (seed $SEED, ${BUDGET_MB} MB; reused when already generated)" >&2
python3 "$TOOLS/make-images.py" --out "$DATA/images" --budget-mb "$BUDGET_MB" --seed "$SEED" >&2
tail -n +2 "$DATA/images/images.tsv" | cut -f1 > "$DATA/refs.txt"
nrefs=$(wc -l < "$DATA/refs.txt")
unique=$(du -sb --apparent-size "$DATA/images/blobs" | cut -f1)
# The 256 MiB blob for the parallel GETs.
big_blob=$DATA/blob-256m
[ -s "$big_blob" ] || head -c $((256 << 20)) /dev/urandom > "$big_blob"
big_digest=sha256:$(sha256sum "$big_blob" | cut -d' ' -f1)

airlock_pid=
cpu_of() {  # PID -> utime+stime in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat"
}
hwm_of() {  # PID -> peak RSS in MiB
  awk '/^VmHWM/{printf "%.1f", $2/1024}' "/proc/$1/status"
}
wait_ready() {  # PORT
  for _ in $(seq 1 500); do
    curl -sf -o /dev/null "http://127.0.0.1:$1/v2/" && return 0
    sleep 0.01
  done
  echo "server on :$1 did not start" >&2; return 1
}
start() {  # SERVER -> sets SERVER_PID (not in a subshell: airlock_pid must survive)
  case $1 in
  dist)
    "$TOOLS/stop-registries.sh" "$PORT_DIST" >/dev/null 2>&1 || true
    rm -rf "$INFRA_DIR/data/registry-$PORT_DIST"
    "$TOOLS/start-registries.sh" "$PORT_DIST" >/dev/null
    wait_ready "$PORT_DIST"
    SERVER_PID=$(cat "$INFRA_DIR/run/registry-$PORT_DIST.pid") ;;
  airlock)
    [ -n "$airlock_pid" ] && { kill "$airlock_pid" 2>/dev/null || true; wait "$airlock_pid" 2>/dev/null || true; }
    rm -rf "$DATA/airlock-store"
    "$AIRLOCK" serve --store "$DATA/airlock-store" --listen "127.0.0.1:$PORT_AIRLOCK" \
      > "$LOGS/airlock-serve.log" 2>&1 &
    airlock_pid=$!
    wait_ready "$PORT_AIRLOCK"
    SERVER_PID=$airlock_pid ;;
  esac
}
port_of() { [ "$1" = dist ] && echo "$PORT_DIST" || echo "$PORT_AIRLOCK"; }
stop_all() {
  "$TOOLS/stop-registries.sh" "$PORT_DIST" >/dev/null 2>&1 || true
  [ -n "$airlock_pid" ] && kill "$airlock_pid" 2>/dev/null || true
}
trap stop_all EXIT

ingest() {  # PORT
  "$AIRLOCK" push "$DATA/images" --to "127.0.0.1:$1" --mapping replace-host \
    --insecure "127.0.0.1:$1" --progress quiet
}
pull() {  # PORT DIR
  local ref
  rm -rf "$2"
  while read -r ref; do
    skopeo --insecure-policy copy -q --all --src-tls-verify=false \
      "docker://127.0.0.1:$1/$ref" "oci:$2:$ref" || return 1
  done < "$DATA/refs.txt"
}
upload_big() {  # PORT
  local loc
  loc=$(curl -sfi -X POST "http://127.0.0.1:$1/v2/bench/big/blobs/uploads/" | tr -d '\r' \
    | awk -F': ' 'tolower($1)=="location"{print $2}')
  case $loc in http*) ;; *) loc="http://127.0.0.1:$1$loc" ;; esac
  case $loc in *\?*) loc="$loc&digest=$big_digest" ;; *) loc="$loc?digest=$big_digest" ;; esac
  curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' \
    --data-binary "@$big_blob" "$loc"
}
parallel_get() {  # PORT -> 0 when all 8 got every byte
  local i pids=() rc=0
  for i in 1 2 3 4 5 6 7 8; do
    curl -sf -o /dev/null -w '%{size_download}\n' \
      "http://127.0.0.1:$1/v2/bench/big/blobs/$big_digest" > "$DATA/get-$i.txt" & pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i" || rc=1; done
  for i in 1 2 3 4 5 6 7 8; do [ "$(cat "$DATA/get-$i.txt")" = $((256 << 20)) ] || rc=1; done
  return $rc
}
export -f ingest pull parallel_get
export AIRLOCK DATA big_digest

[ -s "$TSV" ] && mv "$TSV" "$TSV.prev"
printf 'round\tserver\tcase\twall_s\tserver_cpu_s\tserver_hwm_MiB\trc\n' > "$TSV"
measure() {  # ROUND SERVER CASE PID CMD...
  local round=$1 server=$2 case=$3 pid=$4 c0 c1 t0 t1 rc=0; shift 4
  sync
  c0=$(cpu_of "$pid"); t0=$(date +%s.%N)
  "$@" > "$LOGS/$case-$server-$round.log" 2>&1 || rc=$?
  t1=$(date +%s.%N); c1=$(cpu_of "$pid")
  printf '%s\t%s\t%s\t%.3f\t%.2f\t%s\t%s\n' "$round" "$server" "$case" "$(echo "$t1 - $t0" | bc)" \
    "$(echo "$c1 - $c0" | bc)" "$(hwm_of "$pid")" "$rc" | tee -a "$TSV" >&2
  [ "$rc" = 0 ] || { echo "  $case on $server failed; see $LOGS/$case-$server-$round.log" >&2; tail -3 "$LOGS/$case-$server-$round.log" >&2; }
}

machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/^Mem/{print $2}') GiB RAM"
echo "== $nrefs refs, $((unique / 1048576)) MiB unique blobs; $RUNS rounds; $machine" >&2
for round in $(seq 1 "$RUNS"); do
  if [ $((round % 2)) = 1 ]; then order=(airlock dist); else order=(dist airlock); fi
  for server in "${order[@]}"; do
    start "$server"
    pid=$SERVER_PID
    port=$(port_of "$server")
    measure "$round" "$server" ingest "$pid" ingest "$port"
    measure "$round" "$server" pull "$pid" pull "$port" "$DATA/pulled-$server"
    upload_big "$port"
    measure "$round" "$server" parallel "$pid" parallel_get "$port"
  done
done

# The archive case.
echo "== archive of ~${BIG_MB} MB (generated once)" >&2
python3 "$TOOLS/make-images.py" --out "$DATA/big" --budget-mb "$BIG_MB" --seed 7 >&2
archive=$DATA/big.tar
[ -s "$archive" ] || tar -cf "$archive" -C "$DATA/big" oci-layout index.json blobs
archive_bytes=$(stat -c %s "$archive")
[ -n "$airlock_pid" ] && { kill "$airlock_pid"; wait "$airlock_pid" 2>/dev/null || true; airlock_pid=; }
sync
free0=$(df --output=avail -B1 "$DATA" | tail -1)
t0=$(date +%s.%N)
"$AIRLOCK" serve "$archive" --listen "127.0.0.1:$PORT_AIRLOCK" > "$LOGS/archive-serve.log" 2>&1 &
airlock_pid=$!
wait_ready "$PORT_AIRLOCK"
t1=$(date +%s.%N)
# One image fully read through, so the serve touches real blobs, then the disk check.
first_ref=$(tail -n +2 "$DATA/big/images.tsv" | head -1 | cut -f1)
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://127.0.0.1:$PORT_AIRLOCK/$first_ref" \
  "oci:$DATA/archive-pull:$first_ref" > "$LOGS/archive-pull.log" 2>&1 && archive_pull=ok || archive_pull=failed
rm -rf "$DATA/archive-pull"
sync
free1=$(df --output=avail -B1 "$DATA" | tail -1)
archive_hwm=$(hwm_of "$airlock_pid")
start_s=$(echo "$t1 - $t0" | bc)
printf 'archive\tairlock\tstart\t%.3f\t-\t%s\t%s\n' "$start_s" "$archive_hwm" "$archive_pull" | tee -a "$TSV" >&2

python3 - "$TSV" "$DATA/summary.md" "$RUNS" "$machine" "$nrefs" "$unique" "$archive_bytes" "$((free0 - free1))" <<'EOF'
import csv, statistics, sys
tsv, out, runs, machine, nrefs, unique, archive_bytes, disk_delta = sys.argv[1:]
unique, archive_bytes, disk_delta = int(unique), int(archive_bytes), int(disk_delta)
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
med = lambda xs: statistics.median(xs) if xs else float("nan")
def col(server, case, key):
    return [float(r[key]) for r in rows if r["server"] == server and r["case"] == case and r["rc"] == "0"]
failed = [r for r in rows if r["rc"] not in ("0", "ok")]
lines = [f"machine: {machine}; {runs} rounds, server order alternating; {nrefs} refs, {unique / 2**20:.0f} MiB unique blobs",
         "", "| case | server | wall s (median) | throughput | server CPU s | server peak RSS MiB |", "|---|---|---:|---:|---:|---:|"]
ratios = {}
for case in ("ingest", "pull", "parallel"):
    for server, label in (("airlock", "airlock serve"), ("dist", "docker-registry 2.8")):
        wall = med(col(server, case, "wall_s"))
        nbytes = 8 * 256 * 2**20 if case == "parallel" else unique
        tput = nbytes / wall / 2**30 if case == "parallel" else nbytes / wall / 2**20
        unit = "GiB/s" if case == "parallel" else "MiB/s"
        cpu = med(col(server, case, "server_cpu_s"))
        hwm = max(col(server, case, "server_hwm_MiB") or [float("nan")])
        ratios[(case, server)] = (wall, cpu, hwm)
        lines.append(f"| {case} | {label} | {wall:.2f} | {tput:.2f} {unit} | {cpu:.2f} | {hwm:.1f} |")
lines.append("")
for case, target in (("ingest", 1.5), ("pull", 1.0)):
    a, d = ratios[(case, "airlock")], ratios[(case, "dist")]
    lines.append(f"- {case}: airlock throughput {d[0] / a[0]:.2f}x docker-registry's (target >= {target}x); "
                 f"server CPU {a[1] / d[1] if d[1] else float('nan'):.2f}x (target <= 0.5x)")
a, d = ratios[("parallel", "airlock")], ratios[("parallel", "dist")]
lines.append(f"- parallel: airlock {8 * 256 / 1024 / a[0]:.2f} GiB/s (target >= 1), docker-registry {8 * 256 / 1024 / d[0]:.2f} GiB/s; "
             f"server CPU {a[1] / d[1] if d[1] else float('nan'):.2f}x")
hwm = max(v[2] for k, v in ratios.items() if k[1] == "airlock")
lines.append(f"- airlock serve peak RSS over all cases: {hwm:.1f} MiB (target <= 64)")
arch = [r for r in rows if r["round"] == "archive"][0]
lines.append(f"- archive: {archive_bytes / 1e9:.2f} GB .tar served in place: /v2/ answered {float(arch['wall_s']) * 1000:.0f} ms after spawn "
             f"(target < 1 s); free disk change {disk_delta / 2**20:.1f} MiB; peak RSS {arch['server_hwm_MiB']} MiB; pull of one image: {arch['rc']}")
if failed:
    lines.append(f"- FAILED runs: {len(failed)} (see runs.tsv)")
open(out, "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
EOF
