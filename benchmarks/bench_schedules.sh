#!/usr/bin/env bash
# Issue 4's numbers: every schedule's step vs standard vs Keras model.fit, on the 9-layer net (batch 10
# and 64, float32 and bfloat16) and the context module; then bfloat16 vs float32. Output: stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
for precision in float32 bfloat16; do
  for batch in 10 64; do
    python -m dilbench bench configs/allconv_standard.yaml --set precision=$precision --set train.batch_size=$batch \
      --steps $(( batch == 10 ? 10 : 4 )) --rounds 3
    echo
  done
done
python -m dilbench bench configs/context_mnist.yaml --set precision=float32 --steps 10 --rounds 3
echo
python -m dilbench bench configs/context_mnist.yaml --steps 10 --rounds 3
echo
python benchmarks/bench_precision.py configs/allconv_standard.yaml --set train.batch_size=64 --steps 5
