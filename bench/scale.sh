#!/usr/bin/env bash
# Benchmark (not a test): `promoter run` over the whole registry.k8s.io tree
# of the corpus (75 projects, ~20,000 digests, 22 mirrors: 9,790 destination
# repositories, ~440,000 edges) in steady state, against the loopback
# stand-in for Artifact Registry (tests/support/standin.rs: `tags/list` with
# the GCR `manifest` map, STANDIN_LATENCY_MS per request, default 20).
# Prints edges, requests, peak RSS (`/usr/bin/time -f %M`) and wall time.
#
#   bench/scale.sh [RUNS]
#
# Environment: STANDIN_LATENCY_MS (20), CONCURRENCY (16, run's default),
# SIGNED=1 (every digest carries its `.sig` tag on every mirror but ~150;
# the run signs with a key, as a dry run, and reports those: issue 20
# part 3's signed steady state).
# Target (issue 10): peak RSS under 200 MB; kpromo needed ~700 MB for the
# same plan (1.4 GB before its rewrite). Needs GNU time (Debian `time`).
set -euo pipefail
cd "$(dirname "$0")/.."

runs="${1:-1}"
case "$runs" in
  '' | *[!0-9]* | 0) echo "usage: bench/scale.sh [RUNS]  (RUNS a positive integer)" >&2; exit 2 ;;
esac

bench/install.sh time

# The test harness starts the stand-in (one listener per registry host),
# rewrites a copy of the corpus to point at it, runs the release binary
# under /usr/bin/time and checks the steady state: every edge done, one
# listing per destination repository, one ping per host, nothing else.
cargo test --release --locked --quiet --test scale --no-run
for _ in $(seq "$runs"); do
  cargo test --release --locked --quiet --test scale -- \
    --ignored --exact bench_steady_state --nocapture 2>&1 | grep '^scale bench:'
done
