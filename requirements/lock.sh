#!/usr/bin/env bash
# The pinned dependencies: pyproject.toml -> uv.lock -> requirements/*.txt (with hashes).
#
#   bash requirements/lock.sh            after editing the dependencies in pyproject.toml
#   bash requirements/lock.sh --upgrade  to move every pin to the newest allowed release
#   bash requirements/lock.sh --check    exit 1 unless uv.lock matches pyproject.toml and the
#                                        requirements files match uv.lock (offline)
#
# uv.lock is the lock; runtime.txt (the image) and test.txt (.ci/run, the quick start) are
# exported from it for plain `pip install --require-hashes -r`. Uses $UV, else .venv/bin/uv,
# else uv on the PATH (`pip install uv`).
set -euo pipefail
cd "$(dirname "$0")/.."
UV=${UV:-}
if [ -z "$UV" ]; then
    if [ -x .venv/bin/uv ]; then UV=.venv/bin/uv; else UV=uv; fi
fi
mode=${1:-}

export_to() {  # export_to FILE [uv export options]: one requirements file from uv.lock
    local out=$1
    shift
    {
        echo "# Exported from uv.lock by requirements/lock.sh: do not edit."
        "$UV" export --quiet --frozen --no-header --no-emit-project --format requirements-txt "$@"
    } >"$out"
}

case "$mode" in
--check)
    "$UV" lock --check --offline --quiet || {
        echo "uv.lock does not match pyproject.toml: run bash requirements/lock.sh" >&2
        exit 1
    }
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    export_to "$tmp/runtime.txt" --no-dev
    export_to "$tmp/test.txt" --no-dev --extra test
    for name in runtime.txt test.txt; do
        diff -u "requirements/$name" "$tmp/$name" >&2 || {
            echo "requirements/$name does not match uv.lock: run bash requirements/lock.sh" >&2
            exit 1
        }
    done
    ;;
"" | --upgrade)
    "$UV" lock ${mode:+"$mode"}
    export_to requirements/runtime.txt --no-dev
    export_to requirements/test.txt --no-dev --extra test
    ;;
*)
    echo "usage: bash requirements/lock.sh [--upgrade | --check]" >&2
    exit 2
    ;;
esac
