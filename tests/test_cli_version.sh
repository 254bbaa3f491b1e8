#!/usr/bin/env bash
# qtts version: the backends this build has and, in a CUDA build, one line per
# GPU it sees or the reason it sees none. Args: QTTS_EXE SOURCE_DIR BINARY_DIR.
set -u
exe=$1
out=$("$exe" version 2>&1); rc=$?
fail=0
bad() { echo "FAIL: $*" >&2; fail=$((fail + 1)); }
[ $rc -eq 0 ] || bad "qtts version exited $rc"
first=$(head -1 <<<"$out")
grep -Eq '^qtts [0-9]+\.[0-9]+\.[0-9]+ \(backends: cpu(, cuda)?\)$' <<<"$first" || bad "first line: '$first'"
if grep -q cuda <<<"$first"; then
  rest=$(tail -n +2 <<<"$out")
  [ -n "$rest" ] || bad "a CUDA build names its GPUs or why there are none"
  while IFS= read -r line; do
    grep -Eq '^(GPU [0-9]+: .+, sm_[0-9]+, [0-9.]+ GiB, [0-9]+ SMs|GPU [0-9]+: properties unavailable|no usable GPU: .+)$' <<<"$line" ||
      bad "GPU line: '$line'"
  done <<<"$rest"
else
  [ "$(wc -l <<<"$out")" -eq 1 ] || bad "a CPU build prints one line: '$out'"
fi
[ "$("$exe" --version)" = "$out" ] || bad "--version differs from version"
echo "test_cli_version: $([ $fail -eq 0 ] && echo passed || echo "$fail failed")"
[ $fail -eq 0 ]
