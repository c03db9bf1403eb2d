#!/usr/bin/env bash
# The main job on the bundled sample images: set up (if needed), then prepare a small SR dataset.
#   bash scripts/quickstart.sh [OUT]      (default OUT: ./quickstart)
# Re-running it does nothing that is already done: every step is cached.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-quickstart}
bash "$here/scripts/setup.sh"
srprep="$here/.venv/bin/srprep"
samples="$here/srprep/samples"
# MATLAB-exact LR of the bundled Set5 in the benchmark convention (uint8, modcrop per scale)
"$srprep" downsample "$samples/set5" "$out/Set5" --scale 2 --scale 3 --scale 4
# a small x2 training set from the Kodak crops
"$srprep" downsample "$samples/kodak" "$out/kodak" --scale 2
"$srprep" status "$out"
