#!/usr/bin/env bash
# The GPU runs: train_throughput and scaling at large sizes (width 4096, batch 4096), in float32
# and bfloat16, each row with its % of this GPU's matmul peak measured in the same process
# (8192x8192 operands in the run's dtype; XLA's default precision, so float32 matmuls may use
# TF32 on Ampere and later, in the peak and in training alike).
#
#   bash benchmarks/gpu.sh [OUTDIR]        # default OUTDIR: benchmarks/gpu-results
#
# Needs jax with CUDA (pip install -U "jax[cuda12]"); optax, keras (KERAS_BACKEND=jax) and torch
# with CUDA are used as baselines when installed. Target (issue 6): width-4096 MLP at batch 4096
# >= 50% of the measured matmul peak. Every table is also written as Markdown and JSON to OUTDIR.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-benchmarks/gpu-results}"
mkdir -p "$OUT"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}"
# Let XLA take the memory it needs up front, as a long training run would.
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-true}"

python - <<'EOF'
import sys, jax
if jax.default_backend() != "gpu":
    sys.exit(f"gpu.sh: JAX sees no GPU (backend {jax.default_backend()!r}, devices {jax.devices()}); "
             "install jax[cuda12] or run the CPU benchmarks instead")
print("devices:", jax.devices(), file=sys.stderr)
EOF
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv | tee "$OUT/gpu.txt"

run() {  # run NAME ARGS...: one benchmark, its table to the terminal and OUTDIR/NAME.md, JSON beside it
  local name="$1"; shift
  echo "== $name: python -m $*" >&2
  python -m "$@" --json "$OUT/$name.json" | tee "$OUT/$name.md"
  echo
}

# The MNIST-shaped default (784-256-256-10, N=12800) for comparison with the CPU tables.
run train_throughput_mnist benchmarks.train_throughput --peak-size 8192 --slow-iters 500

for dtype in float32 bfloat16; do
  # 784-4096-4096-10 at batch 1024 and 4096: the issue's GPU target row is batch 4096, fnn manual.
  run "train_throughput_4096_$dtype" benchmarks.train_throughput --dtype "$dtype" \
      --hidden 4096 4096 --batch-sizes 1024 4096 --n 65536 --peak-size 8192 --slow-iters 200
  # Width 1024..8192, depth 1..8 at width 4096, batch 256..16384 at width 4096.
  run "scaling_$dtype" benchmarks.scaling --dtype "$dtype" \
      --widths 1024 2048 4096 8192 --depths 1 2 4 8 --batch-sizes 256 1024 4096 16384 \
      --width 4096 --depth 2 --batch 4096 --epoch-gflop 20000 --max-n 262144 --peak-size 8192
done

python - "$OUT" <<'EOF'
# The issue's GPU target, read back from the JSON just written.
import json, sys
out = sys.argv[1]
for dtype in ("float32", "bfloat16"):
    d = json.load(open(f"{out}/train_throughput_4096_{dtype}.json"))
    for r in d["results"]:
        if r["runner"] == "fnn_manual" and r["batch_size"] == 4096:
            ok = "met" if r["pct_peak"] >= 50 else "NOT met"
            print(f"{dtype}: width-4096 MLP at batch 4096: {r['pct_peak']:.1f}% of the measured "
                  f"{d['peak_flops'] / 1e12:.1f} TFLOP/s matmul peak (target >= 50%: {ok})")
EOF
