#!/usr/bin/env bash
# Issue 4's numbers: every schedule's step vs standard vs Keras model.fit, on the 9-layer net (batch 10
# and 64, float32 and bfloat16) and the context module; then bfloat16 vs float32. Output: stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
for precision in float32 bfloat16; do
  for batch in 10 64; do
    "${PYTHON:-python3}" -m dilbench bench allconv_standard --set precision=$precision --set train.batch_size=$batch \
      --steps $(( batch == 10 ? 10 : 4 )) --rounds 3
    echo
  done
done
"${PYTHON:-python3}" -m dilbench bench context_mnist --set precision=float32 --steps 10 --rounds 3
echo
"${PYTHON:-python3}" -m dilbench bench context_mnist --steps 10 --rounds 3
echo
"${PYTHON:-python3}" benchmarks/bench_precision.py configs/allconv_standard.yaml --set train.batch_size=64 --steps 5
