#!/usr/bin/env bash
# Install moto (PyPI, server mode) into .venv next to this file: the STS and
# ECR APIs the AWS credential tests talk to on 127.0.0.1. Pinned; idempotent:
# with it present it does nothing and needs no network, so tests/run can call
# it before cutting the network off.
set -euo pipefail
cd "$(dirname "$0")"

command -v python3 >/dev/null || { echo "$0: python3 is missing (CPython >= 3.9 with venv)" >&2; exit 1; }
if [ ! -x .venv/bin/moto_server ]; then
  [ -x .venv/bin/pip ] || python3 -m venv .venv
  .venv/bin/pip install --quiet --disable-pip-version-check 'moto[server]==5.2.5'
fi
