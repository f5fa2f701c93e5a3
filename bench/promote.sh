#!/usr/bin/env bash
# Side by side: `promoter run --confirm` against `skopeo sync --all
# --preserve-digests` (skopeo 1.9, one process per destination in parallel),
# alternated A/B/A/B on local docker-registry instances, and in each round the
# registry-ingest floor: a client that only uploads the same blobs (POST +
# PUT, FLOOR_THREADS=8 in flight per destination). Reports promoter's ratio
# to skopeo and to the floor. Installs the Debian packages it needs
# (docker-registry, skopeo, time) when missing; needs python3.
#
# Defaults follow issue 4: 50 two-platform images (2 layers per platform,
# one shared, 1-4 MiB each) in 10 repositories, one source, 4 destinations,
# fresh destinations for every copy, 2 rounds. Override with the environment:
#   IMAGES=50 REPOS=10 DESTS=4 ROUNDS=2 MIN_MIB=1 MAX_MIB=4 bench/promote.sh
# BENCH_JSON=out.json also writes every measurement as JSON; BENCH_KEEP=1
# keeps the scratch directory with every run's output.
# PROMOTER_ARGS="--max-rps 50" adds flags to every promoter run (this one
# paces every host from its first request, starting at 50 r/s).
# PROMOTER_B=path/to/another/promoter measures a second build in the same
# rounds (an A/B on one machine state). TMPDIR=/dev/shm keeps every
# registry's storage in memory: on this machine's ext4 the registries' own
# CPU (inode allocation after each round's deletions) varied 1.5x between
# rounds of the same work, on tmpfs within 10%.
set -euo pipefail
cd "$(dirname "$0")/.."
bench/install.sh time docker-registry skopeo
cargo build --release --quiet --bin promoter
exec python3 bench/promote.py
