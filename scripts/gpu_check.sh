#!/usr/bin/env bash
# Everything that needs the GPU, in one device call: build with CUDA, run the
# GPU tests (kernels vs their CPU twins, goldens with bf16 tolerances), the
# kernel benchmarks, compute-sanitizer memcheck, and the demo job on the
# CUDA backend. Logs go to $OUT (the device tool brings them back), a short
# table is printed last. Written in a session without a GPU: not yet run.
# On the device machine (../shared/device/README.md): carry .devdeps, then
#   bash scripts/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-out/gpu}
mkdir -p "$out"
if [ -f .devdeps/unpack.sh ]; then eval "$(bash .devdeps/unpack.sh)"; fi
export PATH="$PATH:/usr/local/cuda/bin"
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
git rev-parse --short HEAD > "$out/commit.txt" 2>/dev/null
status() { printf '%-28s %s\n' "$1" "$2" >> "$out/summary.txt"; }
: > "$out/summary.txt"
if cmake -S . -B build-gpu -DQTTS_CUDA=ON -DCMAKE_BUILD_TYPE=Release > "$out/configure.log" 2>&1 &&
   cmake --build build-gpu -j"$(nproc)" > "$out/build.log" 2>&1; then
  status build ok
else
  status build FAILED; tail -40 "$out/build.log"; cat "$out/summary.txt"; exit 1
fi
(cd build-gpu && ctest --output-on-failure) > "$out/ctest.log" 2>&1; status "ctest (all)" "rc=$?"
build-gpu/test_cuda_ops > "$out/test_cuda_ops.log" 2>&1; status test_cuda_ops "rc=$? $(tail -1 "$out/test_cuda_ops.log")"
build-gpu/test_talker --backend cuda > "$out/test_talker_cuda.log" 2>&1; status "test_talker --backend cuda" "rc=$? $(tail -1 "$out/test_talker_cuda.log")"
build-gpu/test_cuda_ops --bench > "$out/cuda_ops_bench.log" 2>&1; status "test_cuda_ops --bench" "rc=$?"
if command -v compute-sanitizer >/dev/null; then
  compute-sanitizer --tool memcheck --error-exitcode 9 build-gpu/test_cuda_ops > "$out/memcheck.log" 2>&1
  status "memcheck test_cuda_ops" "rc=$?"
fi
sed 's#"\.\./build/demo-out"#"../build-gpu/demo-out-cuda"#; s#"\.\./build/fixtures#"../build-gpu/fixtures#' jobs/demo.json > jobs/.demo-cuda.json
build-gpu/qtts render jobs/.demo-cuda.json --fresh --backend cuda > "$out/render_cuda.log" 2>&1; status "render demo --backend cuda" "rc=$?"
rm -f jobs/.demo-cuda.json
cat "$out/summary.txt"
