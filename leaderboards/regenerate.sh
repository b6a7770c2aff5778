#!/usr/bin/env bash
# Regenerate the committed reference leaderboards: every defense of benchmark.config.reference_defenses(), 3 seeds, digits, cnn-small, the
# default attack suite, L∞ and L2, in every format with plots. About 12 minutes on 2 cores (the L2 run re-uses the L∞ run's trained models).
# Usage: bash leaderboards/regenerate.sh [results-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
store="${1:-$here/../bench-results/reference}"
defenses=$(python -c "from benchmark.config import reference_defenses; print(','.join(reference_defenses()))")
for norm in inf 2; do
  bench evaluate --defense "$defenses" --seeds 3 --norm "$norm" --executor process --out "$store"
  name=$([ "$norm" = inf ] && echo digits-linf || echo digits-l2)
  tmp=$(mktemp -d)
  bench leaderboard --store "$store" --norm "$norm" --format all --out "$tmp"
  for file in "$tmp"/leaderboard*; do
    base=$(basename "$file")
    cp "$file" "$here/${base/leaderboard/$name}"
  done
  rm -rf "$tmp"
done
