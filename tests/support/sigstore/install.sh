#!/usr/bin/env bash
# Install what the signing tests need next to this file: node_modules
# (@sigstore/mock 0.12.1 and @sigstore/verify 4.1.3, exactly as
# package-lock.json pins them; @sigstore/verify 4.1.0 was the first to read a
# Rekor v2 entry of a DSSE bundle right, and runs on Node 20 although it asks for 22), and in
# .venv sigstore-python 4.5.1 and in-toto-attestation 0.9.3 (the in-toto
# framework's own statement and SLSA provenance bindings). Idempotent: with both present it does
# nothing and needs no network, so tests/run can call it before cutting the
# network off.
set -euo pipefail
cd "$(dirname "$0")"

for tool in node npm python3; do
  command -v "$tool" >/dev/null || { echo "$0: $tool is missing (Node >= 20.17, CPython >= 3.9 with venv)" >&2; exit 1; }
done
# Installed again when package-lock.json pins another @sigstore/verify.
want_verify=$(sed -n '/"node_modules\/@sigstore\/verify"/,/"version"/s/.*"version": "\(.*\)".*/\1/p' package-lock.json)
if [ ! -f node_modules/@sigstore/mock/package.json ] ||
   ! grep -q "\"version\": \"$want_verify\"" node_modules/@sigstore/verify/package.json 2>/dev/null; then
  npm ci --no-audit --no-fund --silent
fi
if [ ! -x .venv/bin/sigstore ] || [ ! -d .venv/lib/python3*/site-packages/in_toto_attestation ]; then
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'sigstore==4.5.1' 'in-toto-attestation==0.9.3'
fi
