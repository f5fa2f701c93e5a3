#!/usr/bin/env bash
# Install the second registry of the test zoo: ferro-oci-server 1.0.0 (an
# independent OCI distribution 1.1 server with the referrers API, crates.io,
# Apache-2.0), built from crates.io with its own Cargo.lock into .root next
# to this file. Why this one: docs/registries.md and docs/crates.md.
# Idempotent: with the binary present it does nothing and needs no network,
# so tests/run can call it before cutting the network off.
set -euo pipefail
cd "$(dirname "$0")"

version=1.0.0
bin=.root/bin/ferro-oci-server
if [ -x "$bin" ] && [ "$(cat .root/version 2>/dev/null)" = "$version" ]; then
  exit 0
fi
command -v cargo >/dev/null || { echo "$0: cargo is missing" >&2; exit 1; }
cargo install --quiet --locked --force --root .root ferro-oci-server --version "=$version"
echo "$version" > .root/version
