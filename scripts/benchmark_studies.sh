#!/usr/bin/env bash
# The benchmark's three studies (docs/studies.md), one after another: for each cue placement its
# no-reduction baselines (stage 1), then its arms (stage 2). Each placement takes under an hour on
# 2 cores. `bash scripts/benchmark_studies.sh [far near patch]`; then one report per placement:
# `python -m src.report outputs/reduction_benchmark_<place>/baselines \
#    outputs/reduction_benchmark_<place>/multiruns/<time> --out docs/reduction_benchmark_<place>`.
set -euo pipefail
python=${PYTHON:-python}
places=("$@")
[ ${#places[@]} -gt 0 ] || places=(far near patch)
for place in "${places[@]}"; do
  for stage in "reduction_benchmark_${place}_baselines" "reduction_benchmark_${place}"; do
    echo "$(date -Is) start ${stage}"
    "$python" -m src.train "experiment=${stage}"
    echo "$(date -Is) done ${stage}"
  done
done
