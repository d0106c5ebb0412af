#!/usr/bin/env bash
# Issue 23: what the Trainer's listeners (per-batch events, progress, non-finite policy, periodic checkpoints)
# cost against the hard-wired loop before them. Runs `dilbench bench --end-to-end` on the quickstart with the
# code before the listener commit (BASE, a git worktree) and with this checkout, alternating, ROUNDS times.
# Each call's own ratio (Trainer epoch training img/s over the bare compiled step's, and the share of the
# epoch outside training) is measured side by side inside that call, so the machine's load cancels out of it;
# the two codes are compared on those ratios. Output: stdout.
#   bash benchmarks/bench_listeners.sh [BASE=935198d] [ROUNDS=4]
set -euo pipefail
cd "$(dirname "$0")/.."
base=${1:-935198d}; rounds=${2:-4}
old=$(mktemp -d)/old
git worktree add -q --detach "$old" "$base"
trap 'git worktree remove --force "$old"' EXIT
echo "$(lscpu | grep '^Model name' | sed 's/  */ /g'); $(nproc) cores"
echo "load at start: $(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-5s %-9s %8s %9s\n' round code ratio outside
for round in $(seq "$rounds"); do
  for side in before after; do
    dir=$PWD; [ "$side" = before ] && dir=$old
    out=$(cd "$dir" && PYTHONPATH="$dir" python -m dilbench bench configs/quickstart.yaml --end-to-end --rounds 1 -q)
    ratio=$(grep -oP 'vs the bare step: \K[0-9.]+' <<<"$out")
    outside=$(grep -oP 'outside training: \K[0-9.]+' <<<"$out")
    printf '%-5s %-9s %7sx %8s%%\n' "$round" "$side" "$ratio" "$outside"
  done
done
echo "load at end: $(cut -d' ' -f1-3 /proc/loadavg)"
