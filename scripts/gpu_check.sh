#!/usr/bin/env bash
# Everything that needs the GPU, in one device call: build with CUDA, run the
# GPU tests (kernels vs their CPU twins, goldens with bf16 tolerances), the
# kernel benchmarks, compute-sanitizer memcheck, the demo job on the CUDA
# backend (and its batch invariance), then the GPU benchmarks on full-size
# random-weight checkpoints (bench/bench_gpu.sh, bench/bench_render.sh).
# $OUT gets logs.tgz, summary.txt and bench-json.tgz (the bench JSON files:
# the device tool brings back at most 8 files); a short table is printed last.
# Run it as `QTTS_COMMIT=<hash> bash scripts/gpu_check.sh`: the device tool
# ships the working tree but not a refreshed .git, so git there names an
# older commit. QTTS_GPU_TESTS=0 skips the tests; QTTS_GPU_BENCH picks the
# benchmarks: synth (bench_gpu.sh: plain, PDL, persistent), render
# (bench_render.sh, and a --sync-stages render with prompts prefilled together and
# one with them prefilled one by one), "synth render" or 1 (both,
# the default), 0 (none). Each part can take ~300-600 s (the summary gives
# every step's seconds), so within the device tool's 600 s per command run
# three calls, which split the work without repeating it (a warm machine
# keeps build-gpu): QTTS_GPU_BENCH=0; then QTTS_GPU_TESTS=0 QTTS_GPU_BENCH=synth;
# then QTTS_GPU_TESTS=0 QTTS_GPU_BENCH=render. QTTS_GPU_BENCH=profile adds an
# Nsight Compute table of device time per kernel (scripts/ncu_summary.py). QTTS_BENCH_SIZES,
# QTTS_RENDER_SIZES, QTTS_RENDER_BATCHES, QTTS_PDL_BENCH_SIZES and
# QTTS_BENCH_FRAMES choose what they run.
# compute-sanitizer runs memcheck (kernels and goldens), racecheck and initcheck (kernels).
# The kernel tests, the goldens and the 1.7B synth benchmark also run with
# --cuda-pdl on (programmatic dependent launch), and the goldens and the
# synth benchmark with --cuda-persistent on (the code predictor as one
# persistent kernel); both are off by default until these comparisons have
# been made.
# On the device machine (../shared/device/README.md): carry .devdeps, then
#   bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
final=${OUT:-out/gpu}
mkdir -p "$final/logs"
final=$(cd "$final" && pwd)
out=$final/logs
if [ -f .devdeps/unpack.sh ]; then eval "$(bash .devdeps/unpack.sh)"; export PATH="/opt/devdeps/usr/bin:$PATH"
  export PKG_CONFIG_PATH="$PKG_CONFIG_PATH:/opt/devdeps/usr/lib/x86_64-linux-gnu/openblas-pthread/pkgconfig"
  export PKG_CONFIG_SYSROOT_DIR=/opt/devdeps; fi
export PATH="$PATH:/usr/local/cuda/bin"
# ../shared does not travel to the device machine: a carried copy of its tokenizer data can.
shared=../shared; [ -d .devshared/data ] && shared=$PWD/.devshared
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
echo "${QTTS_COMMIT:-$(git rev-parse --short HEAD 2>/dev/null) (from git; QTTS_COMMIT not given)}" > "$out/commit.txt"
# a summary line, with the seconds since the previous one (what each step cost of the 600 s a device call has)
last=$SECONDS
status() { printf '%-28s %-6s %s\n' "$1" "$((SECONDS - last))s" "$2" >> "$out/summary.txt"; last=$SECONDS; }
# "N identical, M differ": the audio files of render output folder $1 against the same paths in $2
same_audio() {
  local same=0 diff=0 f
  for f in "$1"/*/*.wav "$1"/*.wav; do
    [ -f "$f" ] || continue
    if cmp -s "$f" "$2/${f#"$1"/}"; then same=$((same+1)); else diff=$((diff+1)); fi
  done
  echo "$same identical, $diff differ"
}
: > "$out/summary.txt"
if cmake -S . -B build-gpu -DQTTS_CUDA=ON -DCMAKE_BUILD_TYPE=Release -DQTTS_SHARED_DIR="$shared" > "$out/configure.log" 2>&1 &&
   cmake --build build-gpu -j"$(nproc)" > "$out/build.log" 2>&1; then
  status build ok
  status "qtts version" "$(build-gpu/qtts version 2>&1 | tail -n +2 | head -1)"
else
  status build FAILED; tail -40 "$out/configure.log" "$out/build.log"; cat "$out/summary.txt"; cp "$out"/*.log "$final/"; exit 1
fi
if [ "${QTTS_GPU_TESTS:-1}" = 1 ]; then
  # the CPU suite's quick tests, to see that this build works here; the slow CPU goldens (minutes
  # on this machine: they ran past 180 s at ecde60c) are CI's, which runs them on every push, and the
  # emulated-CUDA tests (_emu) are for machines without a GPU
  slow="test_render|test_replay|test_talker|test_talker_replay|test_talker_bf16_criteria|test_cli_synth|test_backend_cpu"
  (cd build-gpu && OPENBLAS_NUM_THREADS=2 timeout 150 ctest --output-on-failure -j8 -E "cuda|_emu|^($slow)\$") > "$out/ctest.log" 2>&1
  status "ctest (quick CPU tests)" "rc=$? $(grep -o '[0-9]*% tests passed.*' "$out/ctest.log")"
  timeout 120 build-gpu/test_cuda_ops > "$out/test_cuda_ops.log" 2>&1; status test_cuda_ops "rc=$? $(tail -1 "$out/test_cuda_ops.log")"
  timeout 120 build-gpu/test_talker --backend cuda > "$out/test_talker_cuda.log" 2>&1; status "test_talker --backend cuda" "rc=$? $(tail -1 "$out/test_talker_cuda.log")"
  # the same without CUDA graphs: tells a graph problem from a kernel problem
  timeout 120 build-gpu/test_talker --backend cuda --cuda-graphs off > "$out/test_talker_cuda_nographs.log" 2>&1
  status "test_talker cuda, no graphs" "rc=$? $(tail -1 "$out/test_talker_cuda_nographs.log")"
  # programmatic dependent launch (--cuda-pdl, off by default until measured): kernels and goldens with it on
  timeout 120 build-gpu/test_cuda_ops --cuda-pdl on > "$out/test_cuda_ops_pdl.log" 2>&1; status "test_cuda_ops, PDL" "rc=$? $(tail -1 "$out/test_cuda_ops_pdl.log")"
  timeout 120 build-gpu/test_talker --backend cuda --cuda-pdl on > "$out/test_talker_cuda_pdl.log" 2>&1
  status "test_talker cuda, PDL" "rc=$? $(tail -1 "$out/test_talker_cuda_pdl.log")"
  # the persistent code predictor (--cuda-persistent, off by default until measured; test_cuda_ops
  # turns it on itself for test_predict_frame and its --bench rows): the goldens through it
  timeout 120 build-gpu/test_talker --backend cuda --cuda-persistent on > "$out/test_talker_cuda_persistent.log" 2>&1
  status "test_talker cuda, persistent" "rc=$? $(tail -1 "$out/test_talker_cuda_persistent.log")"
  timeout 120 build-gpu/test_cuda_ops --bench > "$out/cuda_ops_bench.log" 2>&1; status "test_cuda_ops --bench" "rc=$?"
  if command -v compute-sanitizer >/dev/null; then
    timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/test_cuda_ops > "$out/memcheck.log" 2>&1
    status "memcheck test_cuda_ops" "rc=$?"
    if [ "${QTTS_MEMCHECK_TALKER:-1}" = 1 ]; then
      timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/test_talker --backend cuda > "$out/memcheck_talker.log" 2>&1
      status "memcheck test_talker cuda" "rc=$?"
    fi
    # shared-memory races (the emulator runs a block's threads in two fixed orders, not every
    # interleaving) and reads of device memory nothing wrote (the emulator poisons it: NaN)
    timeout 150 compute-sanitizer --tool racecheck --error-exitcode 9 build-gpu/test_cuda_ops > "$out/racecheck.log" 2>&1
    status "racecheck test_cuda_ops" "rc=$? $(grep -m1 -o 'RACECHECK SUMMARY.*' "$out/racecheck.log")"
    timeout 150 compute-sanitizer --tool initcheck --error-exitcode 9 build-gpu/test_cuda_ops > "$out/initcheck.log" 2>&1
    status "initcheck test_cuda_ops" "rc=$? $(grep -m1 -o 'ERROR SUMMARY.*' "$out/initcheck.log")"
  fi
  sed 's#"\.\./build/demo-out"#"../build-gpu/demo-out-cuda"#; s#"\.\./build/fixtures#"../build-gpu/fixtures#' jobs/demo.json > jobs/.demo-cuda.json
  timeout 120 build-gpu/qtts render jobs/.demo-cuda.json --fresh --backend cuda > "$out/render_cuda.log" 2>&1; status "render demo --backend cuda" "rc=$?"
  # batch invariance on the GPU: the same job at --max-batch 1 and 8, audio compared byte for byte
  timeout 120 build-gpu/qtts render jobs/.demo-cuda.json --fresh --backend cuda --max-batch 1 --quiet >> "$out/render_cuda.log" 2>&1
  mv build-gpu/demo-out-cuda build-gpu/demo-out-cuda-b1
  timeout 120 build-gpu/qtts render jobs/.demo-cuda.json --fresh --backend cuda --max-batch 8 --quiet >> "$out/render_cuda.log" 2>&1
  status "cuda batch invariance 1 vs 8" "$(same_audio build-gpu/demo-out-cuda-b1 build-gpu/demo-out-cuda)"
  # the decoder thread (on by default with cuda) against decoding inline: the same bytes
  mv build-gpu/demo-out-cuda build-gpu/demo-out-cuda-b8
  timeout 120 build-gpu/qtts render jobs/.demo-cuda.json --fresh --backend cuda --max-batch 8 --decode-thread off --quiet >> "$out/render_cuda.log" 2>&1
  status "cuda decode thread on vs off" "$(same_audio build-gpu/demo-out-cuda-b8 build-gpu/demo-out-cuda)"
  # qtts decode on the GPU against the CPU: the fixture's codes, SNR of the 16-bit files
  for b in cpu cuda; do
    timeout 120 build-gpu/qtts decode --model build-gpu/fixtures/models/custom_voice --codes tests/fixtures/codec/codes.npy \
      --out "build-gpu/decode-$b.wav" --backend "$b" >> "$out/decode_cuda.log" 2>&1
  done
  status "decode cuda vs cpu" "$(python3 -c '
import array, math, sys, wave
a, b = (array.array("h", wave.open(f).readframes(1 << 30)) for f in sys.argv[1:])
s, n = sum(y * y for y in b), sum((x - y) ** 2 for x, y in zip(a, b))
print("SNR %.1f dB" % (10 * math.log10(s / max(n, 1e-30))) if len(a) == len(b) else "lengths differ")
' build-gpu/decode-cuda.wav build-gpu/decode-cpu.wav 2>&1 | tail -1)"
  rm -f jobs/.demo-cuda.json
fi
bench=${QTTS_GPU_BENCH:-1}
[ "$bench" = 1 ] && bench="synth render"
[ "$bench" = 0 ] && bench=""
wants() { case " $bench " in *" $1 "*) return 0 ;; esac; return 1; }
if wants synth; then
  timeout 200 bash bench/bench_gpu.sh build-gpu "$shared/data/qwen2-tokenizer" /tmp/qtts-models "${QTTS_BENCH_FRAMES:-250}" ${QTTS_BENCH_SIZES:-0.6B 1.7B} \
    > "$out/bench_gpu.log" 2>&1
  status "bench_gpu.sh" "rc=$? $(grep frames/s "$out/bench_gpu.log" | tr '\n' ' ')"
  QTTS_SYNTH_ARGS="--cuda-pdl on" QTTS_BENCH_SUFFIX=pdl timeout 200 bash bench/bench_gpu.sh build-gpu "$shared/data/qwen2-tokenizer" /tmp/qtts-models \
    "${QTTS_BENCH_FRAMES:-250}" ${QTTS_PDL_BENCH_SIZES:-1.7B} > "$out/bench_gpu_pdl.log" 2>&1
  status "bench_gpu.sh PDL" "rc=$? $(grep frames/s "$out/bench_gpu_pdl.log" | tr '\n' ' ')"
  QTTS_SYNTH_ARGS="--cuda-persistent on" QTTS_BENCH_SUFFIX=persistent timeout 200 bash bench/bench_gpu.sh build-gpu "$shared/data/qwen2-tokenizer" \
    /tmp/qtts-models "${QTTS_BENCH_FRAMES:-250}" ${QTTS_PDL_BENCH_SIZES:-1.7B} > "$out/bench_gpu_persistent.log" 2>&1
  status "bench_gpu.sh persistent" "rc=$? $(grep frames/s "$out/bench_gpu_persistent.log" | tr '\n' ' ')"
fi
if wants render; then
  for size in ${QTTS_RENDER_SIZES:-1.7B}; do
    # the model bench_gpu.sh writes (there when the synth part ran on this machine before)
    d=/tmp/qtts-models/Qwen3-TTS-12Hz-$size-CustomVoice
    [ -f "$d/model.safetensors" ] || build-gpu/make_random_model "$d" --size "$size" --tokenizer "$shared/data/qwen2-tokenizer" >> "$out/make_models.log" 2>&1
    QTTS_BUILD=build-gpu timeout "${QTTS_RENDER_TIMEOUT:-200}" bash bench/bench_render.sh /tmp/qtts-models/Qwen3-TTS-12Hz-$size-CustomVoice \
      "$size" cuda ${QTTS_RENDER_BATCHES:-1 8 32 64 128 256} > "$out/bench_render_$size.log" 2>&1
    status "bench_render $size" "rc=$? $(grep -o '"max_batch": [0-9]*.*"x_realtime": [0-9.]*' "$out/bench_render_$size.log" | sed 's/"items.*"x_realtime"/ x/' | tr '\n' ';')"
  done
  # where a large batch's generation goes: device times per stage (--sync-stages), one batch size
  size=${QTTS_RENDER_SIZES:-1.7B}
  size=${size%% *}
  QTTS_RENDER_ARGS=--sync-stages QTTS_BENCH_SUFFIX=sync QTTS_BUILD=build-gpu timeout 120 bash bench/bench_render.sh \
    /tmp/qtts-models/Qwen3-TTS-12Hz-$size-CustomVoice "$size" cuda ${QTTS_RENDER_SYNC_BATCH:-128} > "$out/bench_render_sync.log" 2>&1
  status "bench_render $size synced" "rc=$? $(grep -o '"stages": {.*}' "$out/bench_render_sync.log" | tail -1)"
  # the same with each prompt prefilled alone (as before batched prefill): what batching the prefills saves
  QTTS_RENDER_ARGS="--sync-stages --prefill-batch 1" QTTS_BENCH_SUFFIX=sync-prefill1 QTTS_BUILD=build-gpu timeout 120 bash bench/bench_render.sh \
    /tmp/qtts-models/Qwen3-TTS-12Hz-$size-CustomVoice "$size" cuda ${QTTS_RENDER_SYNC_BATCH:-128} > "$out/bench_render_sync_prefill1.log" 2>&1
  status "bench_render synced, prefill 1" "rc=$? $(grep -o '"stages": {.*}' "$out/bench_render_sync_prefill1.log" | tail -1)"
  # the codec decoder inline on the generation thread (--decode-thread off) against its own thread (the default with cuda)
  QTTS_RENDER_ARGS="--decode-thread off" QTTS_BENCH_SUFFIX=dthread-off QTTS_BUILD=build-gpu timeout 120 bash bench/bench_render.sh \
    /tmp/qtts-models/Qwen3-TTS-12Hz-$size-CustomVoice "$size" cuda ${QTTS_RENDER_SYNC_BATCH:-128} > "$out/bench_render_dthread_off.log" 2>&1
  status "bench_render, decode inline" "rc=$? $(grep -o '"max_batch": [0-9]*.*"x_realtime": [0-9.]*' "$out/bench_render_dthread_off.log" | sed 's/"items.*"x_realtime"/ x/')"
fi
if wants profile; then
  # device time per kernel (Nsight Compute) over frames 5..7 of a 1.7B single-stream synth with the
  # graphs off (the same kernels; ncu then counts launches as the generator issues them)
  d=/tmp/qtts-models/Qwen3-TTS-12Hz-1.7B-CustomVoice
  [ -f "$d/model.safetensors" ] || build-gpu/make_random_model "$d" --size 1.7B --tokenizer "$shared/data/qwen2-tokenizer" >> "$out/make_models.log" 2>&1
  prof() { # $1: tag, then qtts synth options
    local tag=$1; shift
    timeout 150 ncu --csv --print-units base --metrics gpu__time_duration.sum --launch-skip "${QTTS_PROF_SKIP:-3000}" \
      --launch-count "${QTTS_PROF_COUNT:-1800}" build-gpu/qtts synth --model "$d" --text "The quick brown fox jumps over the lazy dog." \
      --speaker ryan --seed 1 --max-frames 12 --ignore-eos --backend cuda --cuda-graphs off --out /tmp/prof.wav --quiet "$@" \
      > "$out/ncu_$tag.csv" 2> "$out/ncu_$tag.err"
    local rc=$?
    python3 scripts/ncu_summary.py "$out/ncu_$tag.csv" > "$out/ncu_summary_$tag.txt" 2>&1
    status "ncu profile $tag" "rc=$rc $(head -1 "$out/ncu_summary_$tag.txt")"
  }
  prof plain
fi
if [ -n "$bench" ]; then
  # only what this run wrote, in one archive (the device tool brings back at most 8 files)
  (cd bench/results && find . -maxdepth 1 -name '*.json' -newer "$out/commit.txt" -printf '%f\n' | tar czf "$final/bench-json.tgz" -T -)
fi
cp "$out/summary.txt" "$final/"
tar czf "$final/logs.tgz" -C "$out" . && rm -rf "$out"
cat "$final/summary.txt"
