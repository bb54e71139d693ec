#!/usr/bin/env bash
# The whole test suite on a fresh machine, in one command:
#
#   bash scripts/test.sh [pytest arguments]
#
# 1. a virtual environment in .venv (reused when it exists) with errlink and its `test` extra;
# 2. Debian's chromium and chromium-driver for the browser tests of the collector's web UI,
#    installed with apt-get when this runs as root and they are missing. Otherwise those tests
#    are skipped, with the reason in pytest's summary; ERRLINK_REQUIRE_BROWSER=1 makes that a
#    failure (.ci/run sets it). ERRLINK_CHROMIUM and ERRLINK_CHROMEDRIVER name other binaries;
# 3. @sentry/node for the third-party SDK test, when npm is there (else that test is skipped);
# 4. pytest, quiet, with the arguments given. Its exit status is the script's.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "scripts/test.sh: $*" >&2; }

python=${PYTHON:-python3}
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    say "errlink needs Python 3.10 or newer; '$python' is not (set PYTHON=python3.x)"
    exit 1
fi

if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -e '.[test]'

# The same lookup as tests/browser/_chromium.py: the variable if set, else the PATH.
browser_found() {
    local chromium=${ERRLINK_CHROMIUM:-$(command -v chromium || true)}
    local driver=${ERRLINK_CHROMEDRIVER:-$(command -v chromedriver || true)}
    [ -n "$chromium" ] && [ -x "$chromium" ] && [ -n "$driver" ] && [ -x "$driver" ]
}

if ! browser_found && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing Debian's chromium and chromium-driver for the browser tests"
    export DEBIAN_FRONTEND=noninteractive
    if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends \
        chromium chromium-driver >/dev/null; }; then
        say "apt-get could not install chromium and chromium-driver"
    fi
fi
browser_missing=""
if ! browser_found; then
    outcome=SKIPPED
    [ "${ERRLINK_REQUIRE_BROWSER:-}" = 1 ] && outcome="FAILED (ERRLINK_REQUIRE_BROWSER=1)"
    browser_missing="chromium or chromedriver not found: the browser tests of the collector's UI"
    browser_missing+=" are $outcome"
    say "*** $browser_missing ***"
    say "*** to run them, install Debian's chromium and chromium-driver (this script does, as"
    say "*** root with apt-get), or set ERRLINK_CHROMIUM and ERRLINK_CHROMEDRIVER ***"
fi

if command -v npm >/dev/null 2>&1 && [ ! -d tests/js/node_modules/@sentry/node ]; then
    npm ci --prefix tests/js --no-audit --no-fund --no-update-notifier --loglevel=error >/dev/null \
        || say "npm ci --prefix tests/js failed: the @sentry/node test will be skipped"
fi

set +e
.venv/bin/python -m pytest -q "$@"
status=$?
set -e
if [ -n "$browser_missing" ]; then
    say "*** $browser_missing (see the summary above) ***"
fi
exit "$status"
