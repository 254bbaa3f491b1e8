#!/usr/bin/env bash
# The README's first command: install dependencies, build, and render a demo
# on the tiny random-weight checkpoint shipped in tests/fixtures (no download).
# Random weights: the audio is noise; the point is the whole pipeline running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh build
mkdir -p out/demo
build/qtts synth --model build/fixtures/models/custom_voice --speaker ryan --seed 7 \
  --text "Chapter one. It was a bright cold day in April, and the clocks were striking thirteen." \
  --out out/demo/synth.wav --codes-out out/demo/synth.codes.npy
echo "demo: wrote out/demo/synth.wav (noise from a random-weight test checkpoint)" >&2
