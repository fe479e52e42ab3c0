#!/usr/bin/env bash
# Transfer benchmark (issue 4): airlock mirror / pack against skopeo on a generated image set.
#
# The set is ../shared/tools/make-images.py --seed 42 --budget-mb 600 (45 refs in 22 repos: OCI and
# Docker media types, an OCI index and a Docker manifest list, layers shared between repos, ~630 MiB
# of unique blobs), generated once under bench/data/transfer/images and pushed once to a local
# docker-registry on 127.0.0.1:$SRC_PORT. A second registry on 127.0.0.1:$DST_PORT is the target.
#
# Cases, each run RUNS times, the tool that goes first alternating from round to round:
#   mirror  airlock mirror -f LIST --to DST/mirror --mapping replace-host
#           vs  skopeo sync --all --preserve-digests --src yaml --dest docker SYNC.yaml DST/mirror
#           (one skopeo process for every repo and tag: the YAML source lists the 22 repos with
#           `[]`, i.e. all tags, which is exactly the 45 refs of LIST)
#   pack    airlock pack -f LIST -o DIR   vs  a loop of skopeo copy --all docker://SRC/REF oci:DIR:REF
#           (skopeo has no multi-image pack; one OCI layout, blobs shared, is the nearest equivalent)
# Each first copy starts from an empty target (the target registry's storage wiped and the registry
# restarted, or the layout directory deleted); the rerun repeats the same command right after, when
# nothing is new. Measured with /usr/bin/time -f '%e %U %S %M' (wall, user, sys, max RSS of the
# tool's process tree). Registry CPU and the CPU used by anything else on the machine during the run
# are recorded too, as a check on interference.
#
# Usage: bench/transfer.sh            env: RUNS (5), BUDGET_MB (600), SRC_PORT (15500), DST_PORT (15501),
#   PROFILE (release; `profiling` builds the same optimised code with symbols and line tables, for
#   `perf record` on a run: the shipped release binary is stripped)
# Output: bench/data/transfer/runs.tsv (one row per run), bench/data/transfer/summary.md (medians,
# ratios against the targets); the summary is copied into bench/RESULTS.md by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUNS=${RUNS:-5}
BUDGET_MB=${BUDGET_MB:-600}
SEED=42
SRC_PORT=${SRC_PORT:-15500}
DST_PORT=${DST_PORT:-15501}
SRC=127.0.0.1:$SRC_PORT
DST=127.0.0.1:$DST_PORT
TOOLS=${TOOLS:-$ROOT/../shared/tools}
DATA=$ROOT/bench/data/transfer
export INFRA_DIR=$DATA/registry-lab
PROFILE=${PROFILE:-release}
AIRLOCK=$ROOT/target/$PROFILE/airlock
SKOPEO="skopeo --insecure-policy"
TSV=$DATA/runs.tsv
LOGS=$DATA/logs

for tool in skopeo docker-registry; do
  command -v "$tool" >/dev/null || { echo "installing docker-registry skopeo" >&2; apt-get install -y docker-registry skopeo >&2; break; }
done
mkdir -p "$DATA" "$LOGS"

echo "== build" >&2
cargo build --locked --profile "$PROFILE" --quiet

echo "== image set (seed $SEED, ${BUDGET_MB} MB; reused when already generated)" >&2
python3 "$TOOLS/make-images.py" --out "$DATA/images" --budget-mb "$BUDGET_MB" --seed "$SEED" >&2

"$TOOLS/start-registries.sh" "$SRC_PORT" "$DST_PORT" >&2
trap '"$TOOLS/stop-registries.sh" "$SRC_PORT" "$DST_PORT" >&2' EXIT
marker=$INFRA_DIR/data/registry-$SRC_PORT/.pushed
want=$(sha256sum "$DATA/images/images.tsv" | cut -d' ' -f1)
if [ "$(cat "$marker" 2>/dev/null)" != "$want" ]; then
  echo "== pushing the set to $SRC" >&2
  python3 "$TOOLS/make-images.py" --out "$DATA/images" --budget-mb "$BUDGET_MB" --seed "$SEED" \
    --push-only --push "$SRC" >&2
  echo "$want" > "$marker"
fi

# ref<TAB>digest of every ref of the set; the airlock list; the skopeo sync YAML; skopeo's ref list.
tail -n +2 "$DATA/images/images.tsv" | cut -f1,3 > "$DATA/refs.tsv"
cut -f1 "$DATA/refs.tsv" | sed "s|^|$SRC/|" > "$DATA/list.txt"
cut -f1 "$DATA/refs.tsv" > "$DATA/refs.txt"
{
  echo "$SRC:"
  echo "  tls-verify: false"
  echo "  images:"
  cut -f1 "$DATA/refs.txt" | cut -d: -f1 | sort -u | sed 's/^/    /; s/$/: []/'
} > "$DATA/sync.yaml"
nrefs=$(wc -l < "$DATA/refs.txt")
unique=$(du -sb --apparent-size "$DATA/images/blobs" | cut -f1)

reg_pid() { cat "$INFRA_DIR/run/registry-$1.pid"; }
cpu_of() {  # pid -> utime+stime in seconds
  awk -v hz="$(getconf CLK_TCK)" '{print ($14+$15)/hz}' "/proc/$1/stat" 2>/dev/null || echo 0
}
busy() {  # all CPUs: non-idle seconds so far
  awk -v hz="$(getconf CLK_TCK)" '/^cpu /{print ($2+$3+$4+$7+$8+$9)/hz; exit}' /proc/stat
}
reset_dst() {
  "$TOOLS/stop-registries.sh" "$DST_PORT" >/dev/null
  rm -rf "$INFRA_DIR/data/registry-$DST_PORT"
  "$TOOLS/start-registries.sh" "$DST_PORT" >/dev/null
}

# Every ref of the set, by its manifest digest, in the target registry under NAME_PREFIX.
verify_registry() {  # TOOL: airlock keeps the path (mirror/bench/img01), skopeo sync the last part (mirror/img01)
  local tool=$1 bad=0 ref digest repo tag got
  while IFS=$'\t' read -r ref digest; do
    repo=${ref%:*}; tag=${ref##*:}
    [ "$tool" = skopeo ] && repo=${repo##*/}
    got=$(curl -sI -H 'Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.list.v2+json, application/vnd.docker.distribution.manifest.v2+json' \
      "http://$DST/v2/mirror/$repo/manifests/$tag" | tr -d '\r' | awk -F': ' 'tolower($1)=="docker-content-digest"{print $2}')
    [ "$got" = "$digest" ] || { bad=$((bad + 1)); echo "  missing or different: $ref ($got)" >&2; }
  done < "$DATA/refs.tsv"
  [ $bad = 0 ] && echo ok || echo "bad:$bad"
}
# The layout has one entry per ref (skopeo writes Docker-typed images converted to OCI, so only
# airlock's digests can be compared with the source).
verify_layout() {  # DIR compare_digests(0|1)
  python3 - "$1" "$2" "$DATA/refs.tsv" <<'EOF'
import json, os, sys
d, cmp, refs = sys.argv[1], sys.argv[2] == "1", dict(l.rstrip("\n").split("\t") for l in open(sys.argv[3]))
try:
    idx = json.load(open(os.path.join(d, "index.json")))
except Exception as e:
    print("bad:no-index"); sys.exit()
def name(ref):  # airlock writes the full reference (127.0.0.1:PORT/bench/x:1.0), skopeo what it was given
    first, _, rest = ref.partition("/")
    return rest if rest and (":" in first or "." in first) else ref
got = {name(m["annotations"]["org.opencontainers.image.ref.name"]): m["digest"] for m in idx["manifests"]}
missing = [r for r in refs if r not in got]
wrong = [r for r in refs if cmp and r in got and got[r] != refs[r]]
blobs_ok = all(os.path.exists(os.path.join(d, "blobs", m["digest"].replace(":", "/"))) for m in idx["manifests"])
print("ok" if not missing and not wrong and blobs_ok else f"bad:missing={len(missing)},wrong={len(wrong)},blobs={blobs_ok}")
EOF
}

[ -s "$TSV" ] && mv "$TSV" "$TSV.prev"
printf 'round\tcase\ttool\tphase\twall_s\tuser_s\tsys_s\tcpu_s\tmaxrss_MiB\tsrc_reg_cpu_s\tdst_reg_cpu_s\tother_cpu_s\trc\tcheck\n' > "$TSV"

measure() {  # ROUND CASE TOOL PHASE CMD...
  local round=$1 case=$2 tool=$3 phase=$4; shift 4
  local log=$LOGS/$case-$tool-$phase-$round.log tf=$DATA/time.txt rc=0
  local s0 d0 b0 s1 d1 b1 wall user sys rss
  sync
  s0=$(cpu_of "$(reg_pid "$SRC_PORT")"); d0=$(cpu_of "$(reg_pid "$DST_PORT")"); b0=$(busy)
  /usr/bin/time -f '%e %U %S %M' -o "$tf" "$@" > "$log" 2>&1 || rc=$?
  s1=$(cpu_of "$(reg_pid "$SRC_PORT")"); d1=$(cpu_of "$(reg_pid "$DST_PORT")"); b1=$(busy)
  read -r wall user sys rss < <(tail -1 "$tf")
  M_ROW=$(awk -v r="$round" -v c="$case" -v t="$tool" -v p="$phase" -v w="$wall" -v u="$user" -v s="$sys" \
    -v m="$rss" -v s0="$s0" -v s1="$s1" -v d0="$d0" -v d1="$d1" -v b0="$b0" -v b1="$b1" -v rc="$rc" 'BEGIN{
      o=(b1-b0)-(u+s)-(s1-s0)-(d1-d0); if (o<0) o=0;
      printf "%s\t%s\t%s\t%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t%.2f\t%.2f\t%.2f\t%s", r,c,t,p,w,u,s,u+s,m/1024,s1-s0,d1-d0,o,rc}')
  [ "$rc" = 0 ] || { echo "  $case $tool $phase (round $round) failed, rc $rc; see $log:" >&2; tail -3 "$log" >&2; }
}
record() {  # CHECK
  printf '%s\t%s\n' "$M_ROW" "$1" | tee -a "$TSV" >&2
}

mirror_airlock() {
  "$AIRLOCK" mirror -f "$DATA/list.txt" --to "$DST/mirror" --mapping replace-host \
    --insecure "$SRC" --insecure "$DST" --progress quiet
}
mirror_skopeo() {
  $SKOPEO sync --all --preserve-digests --src yaml --dest docker --dest-tls-verify=false \
    "$DATA/sync.yaml" "$DST/mirror"
}
pack_airlock() {
  "$AIRLOCK" pack -f "$DATA/list.txt" -o "$1" --insecure "$SRC" --progress quiet
}
pack_skopeo() {
  local ref
  while read -r ref; do
    $SKOPEO copy -q --all --src-tls-verify=false "docker://$SRC/$ref" "oci:$1:$ref" || return 1
  done < "$DATA/refs.txt"
}
# /usr/bin/time runs `bash -c FUNCTION`: the child bash adds a few ms and ~3 MiB of RSS of its own
# (max RSS is per process, so it does not add to the tool's)
export -f mirror_airlock mirror_skopeo pack_airlock pack_skopeo
export AIRLOCK DATA SRC DST SKOPEO

one() {  # ROUND CASE TOOL
  local round=$1 case=$2 tool=$3 out=$DATA/out/$tool
  case $case in
  mirror)
    reset_dst
    measure "$round" mirror "$tool" first bash -c "mirror_$tool"
    record "$(verify_registry "$tool")"
    measure "$round" mirror "$tool" rerun bash -c "mirror_$tool"
    record - ;;
  pack)
    rm -rf "$out"; mkdir -p "$(dirname "$out")"
    measure "$round" pack "$tool" first bash -c "pack_$tool $out"
    record "$(verify_layout "$out" "$([ "$tool" = airlock ] && echo 1 || echo 0)")"
    measure "$round" pack "$tool" rerun bash -c "pack_$tool $out"
    record - ;;
  esac
}

machine="$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/^Mem/{print $2}') GiB RAM"
echo "== $nrefs refs, $((unique / 1048576)) MiB unique blobs; $RUNS rounds; $machine" >&2
t0=$(date +%s)
for round in $(seq 1 "$RUNS"); do
  if [ $((round % 2)) = 1 ]; then order=(airlock skopeo); else order=(skopeo airlock); fi
  for case in mirror pack; do
    for tool in "${order[@]}"; do one "$round" "$case" "$tool"; done
  done
done
elapsed=$(( $(date +%s) - t0 ))

python3 - "$TSV" "$DATA/summary.md" "$RUNS" "$machine" "$nrefs" "$unique" "$elapsed" <<'EOF'
import csv, statistics as st, sys, datetime
tsv, out, runs, machine, nrefs, unique, elapsed = sys.argv[1:]
rows = list(csv.DictReader(open(tsv), delimiter="\t"))
def col(case, tool, phase, key):
    return [float(r[key]) for r in rows if (r["case"], r["tool"], r["phase"]) == (case, tool, phase)]
med = lambda *a: st.median(col(*a))
L = []
L.append(f"{datetime.date.today()} — `bench/transfer.sh` (RUNS={runs}, {elapsed} s in all)  ")
L.append(f"machine: {machine}  ")
L.append(f"image set: make-images.py --seed 42 --budget-mb 600: {nrefs} refs in 22 repos, "
         f"{int(unique) / 2**20:.0f} MiB unique blobs  ")
fails = [r for r in rows if r["rc"] != "0" or r["check"] not in ("ok", "-")]
L.append(f"runs that failed or copied something wrong: {len(fails)}")
L.append("")
L.append("| case | tool | first copy wall s | user+sys CPU s | peak RSS MiB | rerun wall s | rerun CPU s | rerun RSS MiB |")
L.append("|---|---|---:|---:|---:|---:|---:|---:|")
names = {("mirror", "airlock"): "airlock mirror", ("mirror", "skopeo"): "skopeo sync (yaml source)",
         ("pack", "airlock"): "airlock pack", ("pack", "skopeo"): "skopeo copy loop → oci:"}
for case in ("mirror", "pack"):
    for tool in ("airlock", "skopeo"):
        L.append(f"| {case} | {names[case, tool]} | {med(case, tool, 'first', 'wall_s'):.2f} | "
                 f"{med(case, tool, 'first', 'cpu_s'):.2f} | {med(case, tool, 'first', 'maxrss_MiB'):.1f} | "
                 f"{med(case, tool, 'rerun', 'wall_s'):.2f} | {med(case, tool, 'rerun', 'cpu_s'):.2f} | "
                 f"{med(case, tool, 'rerun', 'maxrss_MiB'):.1f} |")
L.append("")
L.append("| case | target | airlock / skopeo (medians) | met |")
L.append("|---|---|---:|---|")
for case in ("mirror", "pack"):
    for label, phase, key, lim in (("wall time ≤ 0.7×", "first", "wall_s", 0.7),
                                   ("CPU ≤ 0.4×", "first", "cpu_s", 0.4),
                                   ("rerun wall ≤ 0.5×", "rerun", "wall_s", 0.5)):
        a, s = med(case, "airlock", phase, key), med(case, "skopeo", phase, key)
        r = a / s if s else float("inf")
        L.append(f"| {case} | {label} | {a:.2f} / {s:.2f} = **{r:.3f}** | {'yes' if r <= lim else 'NO'} |")
    peak = max(col(case, "airlock", "first", "maxrss_MiB") + col(case, "airlock", "rerun", "maxrss_MiB"))
    L.append(f"| {case} | peak RSS ≤ 64 MiB | max of all runs {peak:.1f} MiB | {'yes' if peak <= 64 else 'NO'} |")
L.append("")
L.append("Every run (s; CPU = user+sys of the tool's process tree; reg = the registries' CPU; "
         "other = CPU used by anything else on the machine meanwhile):")
L.append("")
L.append("```")
L.append("round case   tool    phase   wall   user    sys   RSS MiB  src-reg dst-reg other check")
for r in rows:
    L.append(f"{r['round']:>5} {r['case']:<6} {r['tool']:<7} {r['phase']:<5} {float(r['wall_s']):6.2f} "
             f"{float(r['user_s']):6.2f} {float(r['sys_s']):6.2f} {float(r['maxrss_MiB']):8.1f} "
             f"{float(r['src_reg_cpu_s']):7.2f} {float(r['dst_reg_cpu_s']):7.2f} {float(r['other_cpu_s']):5.2f} "
             f"{r['check'] if r['rc'] == '0' else 'rc=' + r['rc']}")
L.append("```")
open(out, "w").write("\n".join(L) + "\n")
print("\n".join(L))
EOF
