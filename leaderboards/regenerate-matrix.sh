#!/usr/bin/env bash
# Regenerate the committed reference aggregation × client-attack matrix (digits-matrix.*): digits, cnn-small,
# FedAvg with 10 clients (all in every round) for 40 rounds of one local Adam epoch, 2 of them Byzantine (clients 0 and
# 1), on an IID and a Dirichlet (α = 0.5) split; 7 aggregation rules × 8 client attacks (bench matrix's defaults),
# seed 0, each cell's model scored by FGSM on the 360 test digits. 112 cells, about 8.5 minutes on 2 cores.
# Usage: bash leaderboards/regenerate-matrix.sh [results-dir]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
store="${1:-$here/../bench-results/matrix}"
bench matrix --partition iid,dirichlet:0.5 --executor process --out "$store"
for format in md csv json tex html; do
  cp "$store/matrix.$format" "$here/digits-matrix.$format"
done
