#!/usr/bin/env bash
# The whole test run on a fresh Debian 12 machine, as root: the packages and
# newer runtimes the suites need (test/setup.sh), the npm dependencies, then
# every suite. Under CI=true no suite may skip. .ci/run is this, with CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."
test/setup.sh
npm ci --no-audit --no-fund
npm test
