#!/usr/bin/env bash
# CI: the portal's JSON API against its OpenAPI document. Runs internet-zone/tests/api_schema.rs,
# which starts ow-internet on a loopback port with a fresh data folder, signs in a test account
# and runs schemathesis (bounded: 20 examples per operation, OW_SCHEMATHESIS_SECONDS of fuzzing,
# default 120). schemathesis must be installed: `pip install schemathesis` (4.x).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> schemathesis $(schemathesis --version 2>/dev/null || echo 'missing: pip install schemathesis')"
OW_REQUIRE_SCHEMATHESIS=1 cargo test --workspace --test api_schema -- --nocapture
