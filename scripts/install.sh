#!/bin/sh
# `scripts/install.sh PYTHON REQUIREMENTS...`: install the requirement files into PYTHON's environment as
# `pip install --no-compile -r FILE...` does, from the places pip is set to use (its index, extra indexes,
# find-links and constraints: pip's configuration files and PIP_* variables, read by `pip config list`), but with
# uv (a pinned release, put into the same environment first) where it can: uv unpacks the wheels on every core.
# Considering every index alike (--index-strategy unsafe-best-match) is what pip itself does. Without a cache:
# a fresh install has nothing to reuse, and the runtime pins would leave 6 GB in it. Where uv cannot (no release
# for this platform, an index it cannot read) pip installs the same files itself.
set -u
py=$1
shift
reqs=""
for r in "$@"; do reqs="$reqs -r $r"; done
pip_cfg() { "$py" -m pip config list 2>/dev/null | sed -n "s/^\(global\|install\|:env:\)\.$1='\(.*\)'$/\2/p"; }
if "$py" -m pip install -q --no-compile "uv==0.13.10" >/dev/null 2>&1; then
    set -- --python "$py" --no-cache --index-strategy unsafe-best-match
    idx=$(pip_cfg index-url | tail -n 1)
    [ -n "$idx" ] && set -- "$@" --index-url "$idx"
    for u in $(pip_cfg extra-index-url); do set -- "$@" --extra-index-url "$u"; done
    for u in $(pip_cfg find-links); do set -- "$@" --find-links "$u"; done
    for c in $(pip_cfg constraint); do set -- "$@" --constraint "$c"; done
    case $(pip_cfg no-index | tail -n 1) in 1 | [Tt]rue | [Yy]es | [Oo]n) set -- "$@" --no-index ;; esac
    # shellcheck disable=SC2086
    if "$(dirname "$py")/uv" pip install "$@" $reqs; then
        exit 0
    fi
    echo "uv could not install$reqs; pip installs them" >&2
fi
# shellcheck disable=SC2086
exec "$py" -m pip install --no-compile $reqs
