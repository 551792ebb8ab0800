#!/usr/bin/env bash
# The compiled data plane under AddressSanitizer and UndefinedBehaviorSanitizer: copies the checkout
# to a temporary folder, builds the module there with VIDEOROOMD_SANITIZE=1 (setup.py), and runs its
# SRTP, parser, socket (Port), REMB estimator, RTCP feedback and fuzz tests and the data-plane contract (both planes, the compiled
# one's forwarding core included) with libasan preloaded (Python itself is not built with it). Any read or
# write out of bounds, use after free or undefined behaviour stops the run with a report.
# PYTHON: the interpreter with the test dependencies (default: .venv/bin/python, as tests/run.sh makes it).
set -euo pipefail
cd "$(dirname "$0")/.."
python=${PYTHON:-.venv/bin/python}
case "$python" in /*) ;; */*) python="$PWD/$python";; esac  # absolute, its venv kept (no symlink resolved)
libasan=$(gcc -print-file-name=libasan.so)
[ -e "$libasan" ] || { echo ".ci/sanitize.sh: gcc has no libasan.so" >&2; exit 1; }

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
git ls-files -z --cached --others --exclude-standard | xargs -0 cp --parents -t "$work" 2>/dev/null || true
cd "$work"
VIDEOROOMD_SANITIZE=1 "$python" setup.py -q build_ext --inplace >/dev/null
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export VIDEOROOMD_SANITIZED=1  # the fuzz test leaves its memory check to the plain run (ASan keeps freed memory)
export VIDEOROOMD_FUZZ_ROUNDS=${VIDEOROOMD_FUZZ_ROUNDS:-200000}
built=$(LD_PRELOAD="$libasan" "$python" -c 'import videoroomd.media.dataplane._native as m; print(m.__file__)')
case "$built" in "$work"/*) ;; *) echo ".ci/sanitize.sh: imported $built, not the sanitized build" >&2; exit 1;; esac
LD_PRELOAD="$libasan" "$python" -m pytest -q -p no:cacheprovider \
    tests/unit/test_native_srtp.py tests/unit/test_native_parse.py tests/unit/test_native_fuzz.py \
    tests/unit/test_native_plane.py tests/daemon/test_dataplane_contract.py tests/daemon/test_native_port.py \
    tests/daemon/test_native_receive.py tests/unit/test_native_remb.py tests/unit/test_native_feedback.py "$@"
