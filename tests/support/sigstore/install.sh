#!/usr/bin/env bash
# Install what the signing tests need next to this file: node_modules
# (@sigstore/mock 0.12.1, exactly as package-lock.json pins it), and in
# .venv sigstore-python 4.5.1 and in-toto-attestation 0.9.3 (the in-toto
# framework's own statement and SLSA provenance bindings). Idempotent: with both present it does
# nothing and needs no network, so tests/run can call it before cutting the
# network off.
set -euo pipefail
cd "$(dirname "$0")"

for tool in node npm python3; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (Node >= 20.17, CPython >= 3.9 with venv)" >&2; exit 1; }
done
if [ ! -f node_modules/@sigstore/mock/package.json ]; then
  npm ci --no-audit --no-fund --silent
fi
if [ ! -x .venv/bin/sigstore ] || [ ! -d .venv/lib/python3*/site-packages/in_toto_attestation ]; then
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'sigstore==4.5.1' 'in-toto-attestation==0.9.3'
fi
