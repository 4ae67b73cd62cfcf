#!/usr/bin/env bash
# Third lease call (session 35): the not-slow suite on the GPU again, after the fixes.
set -u
OUTD="$1"
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
echo "== pytest (not slow) at $(date -u)"
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout 320 python3 -m pytest -q -m "not slow" -n 14 -rf --timeout 90 tests/ > "$OUTD/pytest.txt" 2>&1; echo "pytest rc $?"
grep -E "^(FAILED|ERROR)|passed|failed" "$OUTD/pytest.txt" | tail -30
echo "== end $(date -u)"
