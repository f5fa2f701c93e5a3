#!/usr/bin/env bash
# Rate-limit benchmark of issue 5: through the same nginx `limit_req` front
# (20 r/s, burst 5, status 429) and in one run, promoter's adaptive limiter
# against a simulation of kpromo's (`run --limiter kpromo`: one global
# 50 r/s limiter, a 10 s pause per 429) and against `skopeo sync --all
# --preserve-digests --retry-times 5`. Reports wall time, 429s (nginx's
# access log), exit status and images missing afterwards, and the ratio
# adaptive / kpromo mode (target <= 0.5 with zero failures).
#
# Installs Debian nginx, docker-registry and skopeo when missing; needs
# python3. Override with the environment:
#   IMAGES=12 REPOS=4 LIMIT=20 BURST=5 MIN_KIB=16 MAX_KIB=64 TIMEOUT=900 \
#     bench/ratelimit.sh
# PROMOTER_ARGS adds flags to both promoter runs; BENCH_KEEP=1 keeps the
# scratch directory (every contender's output, nginx logs).
set -euo pipefail
cd "$(dirname "$0")/.."
bench/install.sh nginx docker-registry skopeo
cargo build --release --quiet --bin promoter
exec python3 bench/ratelimit.py
