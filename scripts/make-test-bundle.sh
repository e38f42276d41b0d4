#!/usr/bin/env bash
# Regenerates the trained bundle that the live-path tests load instead of training one per run:
# one shared model for the 9 example channels, seed 1, reference settings otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build >/dev/null
node bin/magwatch.js train --input examples/normal.csv --out examples/model --shared --seed 1 "$@"
