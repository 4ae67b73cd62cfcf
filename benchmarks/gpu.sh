#!/usr/bin/env bash
# The GPU runs: train_throughput and scaling at large sizes (width 4096, batch 4096), in float32
# and bfloat16, each row with its % of this GPU's matmul peak measured in the same process
# (8192x8192 operands in the run's dtype; XLA's default precision, so float32 matmuls may use
# TF32 on Ampere and later, in the peak and in training alike).
#
#   bash benchmarks/gpu.sh [OUTDIR]          # default OUTDIR: benchmarks/gpu-results
#   bash benchmarks/gpu.sh --smoke OUTDIR    # any backend, tiny sizes: checks the script itself
#
# Needs jax with CUDA (pip install -U "jax[cuda12]"); optax, keras (KERAS_BACKEND=jax) and torch
# with CUDA are used as baselines when installed. Target (issue 6): width-4096 MLP at batch 4096
# >= 50% of the measured matmul peak. Every table is also written as Markdown and JSON to OUTDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
SMOKE=0
if [[ "${1:-}" == "--smoke" ]]; then SMOKE=1; shift; fi
OUT="${1:-benchmarks/gpu-results}"
mkdir -p "$OUT"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
# Let XLA take the memory it needs up front, as a long training run would.
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-true}"

SMOKE=$SMOKE python - <<'EOF'
import os, sys, jax
if jax.default_backend() != "gpu" and os.environ["SMOKE"] != "1":
    sys.exit(f"gpu.sh: JAX sees no GPU (backend {jax.default_backend()!r}, devices {jax.devices()}); "
             "install jax[cuda12] or run the CPU benchmarks instead")
print("devices:", jax.devices(), file=sys.stderr)
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"

FAILED=()
run() {  # run NAME ARGS...: one benchmark, its table to the terminal and OUTDIR/NAME.md, JSON beside it
  local name="$1"; shift
  echo "== $name: python -m $*" >&2
  # One benchmark's failure is reported and the others still run: a lease on a GPU is short.
  if ! python -m "$@" --json "$OUT/$name.json" | tee "$OUT/$name.md"; then
    echo "gpu.sh: $name failed" >&2
    FAILED+=("$name")
  fi
  echo
}

# The sizes; --smoke shrinks every one (W: hidden width, B: the target's batch size).
if [[ $SMOKE == 1 ]]; then
  # Every step, at the least work each: one batch of B samples (a one-step compiled epoch), only
  # the fnn runner the target is read from, one scaling configuration (the base, which sits on
  # all three axes), and train_throughput's target row and scaling's base with the same input
  # width (784 in both, in the real runs), so that a compilation cache can serve the second.
  W=32; B=16; QUICK=(--quick --rounds 1)
  MNIST=(--batch-sizes "$B" --n "$B" --peak-size 64 --slow-iters 1 --runners fnn_manual)
  BIG=(--batch-sizes "$B" --n "$B" --features 64 --peak-size 64 --slow-iters 1 --runners fnn_manual)
  SCALE=(--widths "$W" --depths 2 --batch-sizes "$B" --features 64 --epoch-gflop 0.001 --max-n "$B" --peak-size 64)
else
  W=4096; B=4096; QUICK=(); MNIST=(--peak-size 8192 --slow-iters 500)
  BIG=(--batch-sizes 1024 "$B" --n 65536 --peak-size 8192 --slow-iters 200)
  # Width 1024..8192, depth 1..8 at width 4096, batch 256..16384 at width 4096.
  SCALE=(--widths 1024 2048 4096 8192 --depths 1 2 4 8 --batch-sizes 256 1024 4096 16384
         --epoch-gflop 20000 --max-n 262144 --peak-size 8192)
fi

# The MNIST-shaped default (784-256-256-10, N=12800) for comparison with the CPU tables.
run train_throughput_mnist benchmarks.train_throughput "${MNIST[@]}" "${QUICK[@]}"

for dtype in float32 bfloat16; do
  # 784-W-W-10 at batch 1024 and B: the issue's GPU target row is width 4096, batch 4096, fnn manual.
  run "train_throughput_${W}_$dtype" benchmarks.train_throughput --dtype "$dtype" \
      --hidden "$W" "$W" "${BIG[@]}" "${QUICK[@]}"
  run "scaling_$dtype" benchmarks.scaling --dtype "$dtype" "${SCALE[@]}" \
      --width "$W" --depth 2 --batch "$B" "${QUICK[@]}"
done

python - "$OUT" "$W" "$B" <<'EOF'
# The issue's GPU target, read back from the JSON just written.
import json, sys
out, width, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for dtype in ("float32", "bfloat16"):
    try:
        d = json.load(open(f"{out}/train_throughput_{width}_{dtype}.json"))
    except (OSError, ValueError) as e:
        print(f"{dtype}: no result ({e})")
        continue
    for r in d["results"]:
        if r["runner"] == "fnn_manual" and r["batch_size"] == batch:
            ok = "met" if r["pct_peak"] >= 50 else "NOT met"
            print(f"{dtype}: width-{width} MLP at batch {batch}: {r['pct_peak']:.1f}% of the measured "
                  f"{d['peak_flops'] / 1e12:.1f} TFLOP/s matmul peak (target >= 50%: {ok})")
EOF
if (( ${#FAILED[@]} )); then
  echo "gpu.sh: failed: ${FAILED[*]}" >&2
  exit 1
fi
