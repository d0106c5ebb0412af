#!/usr/bin/env bash
# Issue 14's numbers, all from one run on one machine: the CPU and its load, iterator teardown with tf.data
# autotuning on and off, real Trainer epochs against the bare compiled step (`dilbench bench --end-to-end`),
# and every schedule against Keras model.fit.
# Output: stdout. The CIFAR-10 case needs the data under $DILBENCH_DATA.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "$(lscpu | grep '^Model name'); $(nproc) cores; flags: $(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' \
  | grep -x -E 'avx512f|avx512_bf16|amx_bf16|amx_tile|amx_int8' | tr '\n' ' ')"
echo "load: $(uptime)"
python benchmarks/bench_teardown.py --epochs 8
echo "load: $(uptime)"
python -m dilbench bench configs/quickstart.yaml --end-to-end --rounds 5
echo "load: $(uptime)"
python -m dilbench bench configs/allconv_standard_aug.yaml --end-to-end --rounds 2 --set precision=bfloat16 \
  --set data.train_subset=1000 --set data.test_subset=1000
echo "load: $(uptime)"
python -m dilbench bench configs/allconv_standard.yaml --steps 10 --rounds 3
echo "load: $(uptime)"
