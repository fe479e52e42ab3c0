#!/usr/bin/env bash
# Scan throughput and peak memory on a large multi-document input: every YAML file of the corpus
# (../shared/corpus) joined into one stream and repeated to ~100 MB, scanned on one core.
# Targets (issue 2): >= 50 MB/s on one core; peak RSS <= 3x the largest single input file.
# Usage: bench/scan-throughput.sh [SIZE_MB]   (results are appended to bench/RESULTS.md by hand)
# PROFILE=profiling bench/scan-throughput.sh: the same optimised code with symbols and line tables
# (target/profiling/airlock), to run under `perf record`; the shipped release binary is stripped.
set -euo pipefail
cd "$(dirname "$0")/.."
size_mb=${1:-100}
corpus=${CORPUS:-../shared/corpus}
data=bench/data
mkdir -p "$data"
profile=${PROFILE:-release}
cargo build --locked --profile "$profile" --quiet
bin=target/$profile/airlock

one="$data/corpus-once.yaml"
: > "$one"
# Valid YAML inputs only: the Helm template that is not YAML before rendering is left out.
find "$corpus" -type f \( -name '*.yaml' -o -name '*.yml' \) ! -name 'jenkins-casc-config.yml' | sort |
  while read -r f; do printf -- '---\n' >> "$one"; cat "$f" >> "$one"; printf '\n' >> "$one"; done
# Without the CRDs too: every document is then parsed, so this is the parser's own speed.
nocrd="$data/corpus-once-nocrd.yaml"
awk 'BEGIN{RS="\n---\n"; ORS="\n---\n"} !/\nkind: CustomResourceDefinition/' "$one" > "$nocrd"

measure() {  # measure SOURCE_ONCE LABEL
  local once=$1 label=$2 big="$data/$2-${size_mb}mb.yaml"
  local once_bytes copies bytes best="" best_rss secs rss_kb findings mbps ratio
  once_bytes=$(stat -c %s "$once")
  copies=$(( size_mb * 1024 * 1024 / once_bytes + 1 ))
  : > "$big"
  for _ in $(seq "$copies"); do cat "$once" >> "$big"; done
  bytes=$(stat -c %s "$big")
  cat "$big" > /dev/null   # warm the page cache so the disk is not measured
  for _ in 1 2 3; do
    /usr/bin/time -f '%e %M' -o "$data/time.txt" taskset -c 0 "$bin" scan --format json "$big" > "$data/out.json"
    read -r secs rss_kb < "$data/time.txt"
    if [ -z "$best" ] || [ "$(echo "$secs < $best" | bc)" = 1 ]; then best=$secs; best_rss=$rss_kb; fi
  done
  findings=$(grep -c '"kind"' "$data/out.json" || true)
  mbps=$(echo "scale=1; $bytes / 1048576 / $best" | bc)
  ratio=$(echo "scale=2; $best_rss * 1024 / $bytes" | bc)
  echo "$label: $big ($bytes bytes, $copies copies, $findings findings)"
  echo "  time ${best}s  throughput ${mbps} MB/s  peak RSS $((best_rss / 1024)) MiB (${ratio}x the input file)"
}

echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "command: taskset -c 0 $bin scan --format json FILE  (best of 3)"
measure "$one" corpus
measure "$nocrd" corpus-without-crds
