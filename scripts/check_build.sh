#!/usr/bin/env bash
# Builds errlink's wheel and sdist with `python -m build`, then installs each one in a fresh
# virtual environment and runs `errlink demo` with it, away from the checkout: what someone who
# installs the published package gets. Run by .ci/run before the tests; takes about a minute.
#
# Usage: bash scripts/check_build.sh   (PYTHON=python3.12 to build and test with another one)
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# Runs a command with its output in a log, shown only if the command fails.
quietly() {
    local log="$work/step.log"
    if ! "$@" >"$log" 2>&1; then
        cat "$log" >&2
        echo "check_build: failed: $*" >&2
        exit 1
    fi
}

"$python" -m venv "$work/build-env"
quietly "$work/build-env/bin/python" -m pip install --upgrade pip build
quietly "$work/build-env/bin/python" -m build --outdir "$work/dist" .

shopt -s nullglob
wheels=("$work"/dist/errlink-*.whl)
sdists=("$work"/dist/errlink-*.tar.gz)
if [ "${#wheels[@]}" -ne 1 ] || [ "${#sdists[@]}" -ne 1 ]; then
    echo "check_build: expected one wheel and one sdist, got: $(ls "$work/dist")" >&2
    exit 1
fi

for artifact in "${wheels[0]}" "${sdists[0]}"; do
    name=$(basename "$artifact")
    venv="$work/venv-$name"
    "$python" -m venv "$venv"
    quietly "$venv/bin/python" -m pip install "$artifact"
    # From an empty directory, so the installed package runs, not ./errlink of the checkout.
    mkdir "$work/run-$name"
    if ! (cd "$work/run-$name" && "$venv/bin/errlink" demo) >"$work/demo.log" 2>&1; then
        cat "$work/demo.log" >&2
        echo "check_build: 'errlink demo' failed with $name" >&2
        exit 1
    fi
    echo "check_build: $name installs in a fresh venv and runs 'errlink demo'"
done
