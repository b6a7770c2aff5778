#!/usr/bin/env bash
# Regenerate the committed reference privacy leaderboard (digits-privacy.*): the setting of configs/privacy-digits.toml
# (digits, cnn-small trained on 100 samples, standard, pgd-at, dp-sgd, fedavg, fed-at, dp-fedavg; 3 seeds), scored for
# robustness and for privacy (membership inference, gradient inversion of the federated rows). About 4 minutes on
# 2 cores. Usage: bash leaderboards/regenerate-privacy.sh [results-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
store="${1:-$here/../bench-results/privacy}"
bench evaluate --config "$here/configs/privacy-digits.toml" --executor process --out "$store"
tmp=$(mktemp -d)
bench leaderboard --store "$store" --format all --out "$tmp"
for file in "$tmp"/leaderboard*; do
  base=$(basename "$file")
  cp "$file" "$here/${base/leaderboard/digits-privacy}"
done
rm -rf "$tmp"
