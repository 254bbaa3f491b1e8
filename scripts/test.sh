#!/usr/bin/env bash
# The README's test command: install dependencies, build (CUDA too when nvcc
# exists), run every CPU test; then the same tests under ASan+UBSan.
# GPU tests exit with the skip code (77) where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
scripts/setup.sh build
# print why tests skipped (GPU tests without a GPU, tokenizer tests without ../shared)
skips() { grep -h "^SKIP:" "$1/Testing/Temporary/LastTest.log" 2>/dev/null | sort | uniq -c | sed 's/^/  skipped: /' >&2 || true; }
(cd build && ctest --output-on-failure -j"$jobs")
skips build
if [ "${QTTS_SKIP_SANITIZE:-0}" != 1 ]; then
  echo "== sanitizer build (ASan+UBSan, CPU only) ==" >&2
  scripts/setup.sh build-asan -DQTTS_SANITIZE=ON -DQTTS_CUDA=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo
  (cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure -j"$jobs")
  skips build-asan
fi
