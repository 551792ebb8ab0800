#!/usr/bin/env bash
# Run the test suite on a fresh machine: installs the Debian packages the tests
# drive (Chromium, Firefox ESR, coturn, nginx and Caddy, Redis for the cluster tests, systemd-analyze, groff, Node.js, Janus for bench.peers, iproute2 for the
# test hosts' network namespaces), the package with its test extra into .venv, then runs
# pytest (as root: the browser call tests make network namespaces). Extra arguments go to pytest; with no
# test or selection named, the non-browser tests run on four processes first, then the browser tests.
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
# The whole suite: the unit and daemon tests four at a time on the two cores (they mostly wait
# on sockets and timers: 4 m 09 s, against 4 m 48 s three and about 5 m 40 s two at a time), then
# the browser tests one at a time (each browser wants the cores to itself: two at a time loaded
# the machine past 20 and failed).
status=0
.venv/bin/python -m pytest -n 4 -m "not browser" --durations=15 "$@" || status=$?
.venv/bin/python -m pytest -m browser --durations=25 "$@" || status=$?
exit $status
