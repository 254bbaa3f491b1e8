#!/usr/bin/env bash
# The README's first command: install dependencies, build, and render the demo
# job (jobs/demo.json) on the tiny random-weight checkpoint shipped in
# tests/fixtures: no download. Random weights: the audio is noise; the point
# is the whole pipeline running (segmentation, batching, journal, manifest).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
build/qtts render jobs/demo.json "$@"
echo "demo: audio and manifest.json in build/demo-out/ (noise from a random-weight test checkpoint)" >&2
