#!/usr/bin/env bash
# Second lease (session 35): fit's per-call profile, time_to_result on the GPU, the not-slow suite on the GPU.
set -u
OUTD="$1"; T0=$(date +%s); BUDGET=${BUDGET:-540}
left() { echo $(( BUDGET - ($(date +%s) - T0) )); }
export PYTHONUNBUFFERED=1 KERAS_BACKEND=jax
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 3
export PYTHONPATH=/tmp/site:$PWD
{
echo "== start $(date -u) $(git log -1 --format=%h 2>/dev/null)"; nproc; nvidia-smi --query-gpu=name,memory.total --format=csv
python3 -c "import sys, jax, fnn, keras, torch; print(sys.version, jax.__version__, jax.devices(), keras.__version__, torch.__version__)" || exit 4
echo "== profile at $(date -u), $(left) s left"
timeout 90 python3 .whl/prof.py > "$OUTD/fit_per_call_profile.txt" 2>&1; echo "profile rc $?"
grep "===\|eager" "$OUTD/fit_per_call_profile.txt"
echo "== time_to_result at $(date -u), $(left) s left"
T=$(( $(left) - 110 )); (( T > 330 )) && T=330
timeout $T python3 -m benchmarks.time_to_result --rounds 1 --no-sweep --json "$OUTD/time_to_result.json" > "$OUTD/time_to_result.md"; echo "time_to_result rc $?"
cat "$OUTD/time_to_result.md"
echo "== pytest (not slow) at $(date -u), $(left) s left"
XLA_PYTHON_CLIENT_PREALLOCATE=false timeout $(( $(left) - 10 )) python3 -m pytest -q -m "not slow" -n 12 -rf --timeout 90 tests/ > "$OUTD/pytest.txt" 2>&1; echo "pytest rc $?"
tail -40 "$OUTD/pytest.txt"
echo "== end $(date -u)"
} 2>&1 | tee "$OUTD/log.txt"
