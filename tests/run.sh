#!/usr/bin/env bash
# Run the test suite on a fresh machine: installs the Debian packages the tests
# drive (Chromium, Firefox ESR, coturn, nginx and Caddy, Redis for the cluster tests, systemd-analyze, groff, Node.js, Janus for bench.peers, iproute2 for the
# test hosts' network namespaces), the package with its test extra into .venv, then runs
# pytest (as root: the browser call tests make network namespaces). Extra arguments go to pytest; with no
# test or selection named, the whole suite runs on two processes: one takes the browser tests in turn.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for want in chromium:chromium firefox-esr:firefox-esr turnserver:coturn nginx:nginx-light caddy:caddy redis-server:redis-server systemd-analyze:systemd groff:groff node:nodejs npm:npm ip:iproute2 janus:janus; do
    command -v "${want%%:*}" >/dev/null 2>&1 || missing+=("${want#*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    echo "tests/run.sh: installing ${missing[*]}" >&2
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'

# Tests or a selection named on the command line: one pytest run, as asked.
for arg in "$@"; do
    case "$arg" in
        -m|-k|-n|-m*|-k*|-n*|--*=*|tests*|*.py*|*::*) exec .venv/bin/python -m pytest "$@" ;;
    esac
done
# The whole suite on two processes: the browser tests all go to one of them, one at a time (a
# browser wants a core), while the unit and daemon tests (mostly waiting on sockets and timers)
# run on the other, and on both once the browsers are done.
exec .venv/bin/python -m pytest -n 2 --dist loadgroup "$@"
