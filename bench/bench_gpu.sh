#!/usr/bin/env bash
# Single-stream synthesis benchmark on the GPU: full-size random-weight 0.6B
# and 1.7B CustomVoice checkpoints (written by build*/make_random_model, since
# the official package cannot run on the GPU machine), a fixed frame count
# with EOS ignored (benchmarks only), two runs per model:
#   1. plain: wall clock, time to first audio (first frame decoded as soon as
#      it exists), frames/s, real-time factor, peak GPU memory;
#   2. --sync-stages: the device waits at every stage boundary, so the stage
#      times (prefill, talker, code predictor, sampling, decoder) are device
#      times; its wall clock is slower than run 1 and is not the headline.
# Writes bench/results/gpu-synth-<size>-<gpu>[-$QTTS_BENCH_SUFFIX].json (commit,
# device, the backend's settings as qtts synth reports them, both runs).
# QTTS_SYNTH_ARGS adds qtts synth options to both runs (e.g. "--cuda-pdl on"),
# and QTTS_BENCH_SUFFIX names such a variant so that it does not overwrite the default.
# Usage: bench/bench_gpu.sh BUILD_DIR TOKENIZER_DIR MODELS_DIR [FRAMES] [SIZES...]
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(realpath "$1"); tok=$2; models=$3; frames=${4:-250}; shift 4 || true
sizes=${*:-0.6B 1.7B}
read -r -a extra <<< "${QTTS_SYNTH_ARGS:-}"
export CUDA_MODULE_LOADING=EAGER   # kernel loading stays out of the first frame
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
gtag=$(echo "$gpu" | tr -c 'A-Za-z0-9\n' '-' | tr 'A-Z' 'a-z' | sed 's/--*/-/g; s/-$//')
mkdir -p "$models"
text="The quick brown fox jumps over the lazy dog, and then it runs far away into the forest."
for size in $sizes; do
  dir="$models/Qwen3-TTS-12Hz-$size-CustomVoice"
  [ -f "$dir/model.safetensors" ] || "$build/make_random_model" "$dir" --size "$size" --tokenizer "$tok"
  tmp=$(mktemp -d)
  "$build/qtts" synth --model "$dir" --text "$text" --speaker ryan --seed 1 --max-frames "$frames" --ignore-eos \
    --backend cuda "${extra[@]}" --first-chunk 1 --out "$tmp/a.wav" --stats-json "$tmp/plain.json" --quiet
  "$build/qtts" synth --model "$dir" --text "$text" --speaker ryan --seed 1 --max-frames "$frames" --ignore-eos \
    --backend cuda "${extra[@]}" --sync-stages --out "$tmp/b.wav" --stats-json "$tmp/sync.json" --quiet
  out="bench/results/gpu-synth-$size-$gtag${QTTS_BENCH_SUFFIX:+-$QTTS_BENCH_SUFFIX}.json"
  python3 - "$tmp/plain.json" "$tmp/sync.json" "$out" "$gpu" "$frames" "$size" <<'PY'
import json, os, subprocess, sys
plain, sync = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
# QTTS_COMMIT: the device tool ships the working tree but not a refreshed .git, so the caller names the commit
commit = os.environ.get("QTTS_COMMIT") or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
# (a git status there compares the tree with that stale .git: only meaningful without QTTS_COMMIT)
dirty = not os.environ.get("QTTS_COMMIT") and subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"],
                       capture_output=True, text=True).stdout.strip() != ""
n = plain["frames"]
res = {"benchmark": "gpu-synth", "commit": commit + ("-dirty" if dirty else ""), "device": sys.argv[4],
       "model": f"full-size random-weight {sys.argv[6]} CustomVoice (bench/make_random_model: released names, shapes, dtypes)",
       "frames_requested": int(sys.argv[5]), "eos_ignored": True, "single_stream": True,
       "settings": {"backend_params": plain["backend_params"], "synth_args": os.environ.get("QTTS_SYNTH_ARGS", "")},
       "wall_clock_ms": plain["wall_clock_ms"], "time_to_first_chunk_ms": plain["time_to_first_chunk_ms"],
       "first_chunk_frames": plain["first_chunk_frames"],
       "peak_memory_mb": plain["peak_device_memory_mb"], "frames_per_second": plain["frames_per_second"],
       "realtime_factor": plain["realtime_factor"],
       "generator_steps": plain["generator_steps"], "predictor_fused_steps": plain["predictor_fused_steps"],
       "stages": {k: sync["stages"][k] for k in ("prefill_ms", "talker_ms", "code_predictor_ms", "sampling_ms", "decoder_ms")},
       "stages_per_frame_ms": {k.replace("_ms", ""): round(sync["stages"][k] / n, 4) for k in ("talker_ms", "code_predictor_ms", "sampling_ms")},
       "stages_note": "stage times from the --sync-stages run (device waits at stage boundaries); the other numbers from the plain run",
       "plain_run": plain, "sync_stages_run": sync}
json.dump(res, open(sys.argv[3], "w"), indent=2)
print(f"{sys.argv[6]}{' ' + os.environ['QTTS_BENCH_SUFFIX'] if os.environ.get('QTTS_BENCH_SUFFIX') else ''}: {res['frames_per_second']:.1f} frames/s, {res['realtime_factor']:.2f}x real time, "
      f"first audio {res['time_to_first_chunk_ms']:.1f} ms, peak {res['peak_memory_mb']:.0f} MB, "
      f"fused predictor {res['predictor_fused_steps']}/{res['generator_steps']} steps; per frame (synced): "
      + ", ".join(f"{k} {v:.3f} ms" for k, v in res["stages_per_frame_ms"].items()))
PY
  rm -rf "$tmp"
done
