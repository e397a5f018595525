#!/bin/sh
# SPDX-License-Identifier: MIT
# test-openapi-lint.sh OPENAPI_JSON - lints the public API's OpenAPI document with spectral
# (the version pinned in scripts/deps, installed into .tools/spectral) and the ruleset
# .spectral.yaml; any warning fails. A missing spectral is a failure, not a skip: CI must
# not pass without the lint. Needs IPFIXD_SOURCE_ROOT (set by tests/meson.build).
set -eu

doc=${1:?usage: test-openapi-lint.sh OPENAPI_JSON}
root=${IPFIXD_SOURCE_ROOT:?IPFIXD_SOURCE_ROOT is not set}
spectral=$root/.tools/spectral/node_modules/.bin/spectral

if [ ! -x "$spectral" ]; then
        echo "FAIL: spectral is not installed ($spectral missing): run scripts/deps" >&2
        exit 1
fi
if ! command -v node >/dev/null 2>&1; then
        echo "FAIL: node is not installed (spectral needs it): run scripts/deps" >&2
        exit 1
fi
if [ ! -r "$doc" ]; then
        echo "FAIL: cannot read $doc" >&2
        exit 1
fi

echo "spectral $("$spectral" --version) linting $doc with $root/.spectral.yaml"
if ! "$spectral" lint --fail-severity=warn --ruleset "$root/.spectral.yaml" "$doc"; then
        echo "FAIL: spectral found problems in $doc (fix them; see .spectral.yaml for the rules)" >&2
        exit 1
fi
echo "PASS: $doc"
