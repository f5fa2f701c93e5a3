#!/usr/bin/env bash
# Benchmark (not a test): `promoter check` over the whole k8s.io corpus, the
# three thin-manifest trees in one process, run N times (default 10).
# Reports median and min wall time, max peak RSS and the corpus size.
#
#   bench/check.sh [N]
#
# Needs GNU time (`/usr/bin/time`, Debian package `time`); installs it when
# missing. Target (issue 2): under 0.3 s wall and under 100 MB peak RSS.
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-10}"
case "$runs" in
  '' | *[!0-9]* | 0) echo "usage: bench/check.sh [N]  (N a positive integer)" >&2; exit 2 ;;
esac

bench/install.sh time

cargo build --release --locked --quiet
bin=target/release/promoter

corpus=tests/data/k8s-io
trees=("$corpus/registry.k8s.io" "$corpus/k8s.gcr.io" "$corpus/k8s.gcr.io/archived")
args=(check)
files=()
for tree in "${trees[@]}"; do
  args+=(--thin-manifest-dir "$tree")
  # Only the tree's own manifests/ and images/: k8s.gcr.io holds archived/.
  while IFS= read -r -d '' f; do files+=("$f"); done \
    < <(find "$tree/manifests" "$tree/images" -type f -print0)
done
bytes=$(cat "${files[@]}" | wc -c)

# One warm-up run, also to see that the command works: exit 0 or 1
# (findings) is fine, 2 is a usage or I/O error.
status=0
"$bin" "${args[@]}" --format json >/dev/null || status=$?
if [ "$status" -gt 1 ]; then
  echo "bench/check.sh: promoter check failed with exit code $status" >&2
  exit 1
fi

samples=$(mktemp)
trap 'rm -f "$samples"' EXIT
for _ in $(seq "$runs"); do
  # `%e` wall seconds, `%M` peak RSS in KiB; -a appends one line per run.
  # Exit code 1 (findings) is expected: GNU time then also writes a
  # "Command exited with non-zero status" line, filtered out below.
  /usr/bin/time -a -o "$samples" -f '%e %M' "$bin" "${args[@]}" --format json \
    >/dev/null || true
done

grep -E '^[0-9.]+ [0-9]+$' "$samples" | sort -n -k1,1 | awk -v runs="$runs" -v bytes="$bytes" -v files="${#files[@]}" '
  { wall[NR] = $1; if ($2 > rss) rss = $2 }
  END {
    if (NR % 2) median = wall[(NR + 1) / 2]
    else median = (wall[NR / 2] + wall[NR / 2 + 1]) / 2
    printf "promoter check, 3 thin-manifest trees, %d runs\n", runs
    printf "  %-14s %d bytes (%.1f MB) in %d files\n", "corpus", bytes, bytes / 1e6, files
    printf "  %-14s %.2f s\n", "median wall", median
    printf "  %-14s %.2f s\n", "min wall", wall[1]
    printf "  %-14s %.1f MB (%d KiB)\n", "max peak RSS", rss / 1024, rss
  }'
