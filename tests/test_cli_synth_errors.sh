#!/usr/bin/env bash
# qtts synth on bad input: each case must exit non-zero with a message naming
# the problem and leave no output file behind. Args: QTTS_EXE SOURCE_DIR BINARY_DIR.
set -u
exe=$1; bin=$3
models=$bin/fixtures/models
if [ ! -f "$models/custom_voice/vocab.json" ]; then echo "SKIP: tokenizer files absent (../shared)"; exit 77; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
pass=0; fail=0
# expect NAME PATTERN ARGS...: non-zero exit, PATTERN in stderr, no $tmp/out.* left
expect() {
  local name=$1 pat=$2; shift 2
  local msg rc
  msg=$("$exe" synth --quiet "$@" 2>&1); rc=$?
  if [ $rc -ne 0 ] && grep -q -- "$pat" <<<"$msg" && ! ls "$tmp"/out.* >/dev/null 2>&1; then
    pass=$((pass + 1))
  else
    fail=$((fail + 1)); echo "FAIL $name: rc=$rc msg=$msg"; ls "$tmp" >&2
  fi
}
cv=$models/custom_voice
python3 - "$tmp/xv.npy" <<'PY'
import struct, sys
# a float32 NPY of 7 values: the wrong size for any fixture model
hdr = "{'descr': '<f4', 'fortran_order': False, 'shape': (7,), }"
hdr += " " * ((64 - (10 + len(hdr) + 1) % 64) % 64) + "\n"
open(sys.argv[1], "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hdr)) + hdr.encode() + struct.pack("<7f", *range(7)))
PY
expect "unknown speaker lists valid ones" "unknown speaker 'bob' (valid: .*ryan" --model "$cv" --speaker bob --text hi --out "$tmp/out.wav"
expect "missing speaker" "needs --speaker" --model "$cv" --text hi --out "$tmp/out.wav"
expect "empty text" "empty text" --model "$cv" --speaker ryan --text "" --out "$tmp/out.wav"
expect "invalid UTF-8 at its offset" "text is not valid UTF-8: byte 0xff at offset 1" --model "$cv" --speaker ryan --text "$(printf 'a\xffb')" --out "$tmp/out.wav"
expect "unwritable output folder" "not writable" --model "$cv" --speaker ryan --text hi --out "$tmp/no/such/dir/out.wav"
expect "unknown output format" "unsupported output format" --model "$cv" --speaker ryan --text hi --out "$tmp/out.mp3"
expect "unknown language" "language" --model "$cv" --speaker ryan --language klingon --text hi --out "$tmp/out.wav"
expect "x-vector on CustomVoice" "only Base" --model "$cv" --speaker ryan --xvector "$tmp/xv.npy" --text hi --out "$tmp/out.wav"
expect "Base without x-vector" "give --xvector" --model "$models/base" --text hi --out "$tmp/out.wav"
expect "x-vector of the wrong size" "x-vector has 7 values, this model needs" --model "$models/base" --xvector "$tmp/xv.npy" --text hi --out "$tmp/out.wav"
expect "instruct on Base" "does not take instructions" --model "$models/base" --xvector "$tmp/xv.npy" --instruct "happy" --text hi --out "$tmp/out.wav"
# a 0.6B CustomVoice checkpoint ignores instructions (the official wrapper drops them)
cp -r "$cv" "$tmp/cv06"
sed -i 's/"tts_model_size": *"[^"]*"/"tts_model_size": "0b6"/' "$tmp/cv06/config.json"
expect "instruct on 0.6B CustomVoice" "ignores instructions" --model "$tmp/cv06" --speaker ryan --instruct "happy" --text hi --out "$tmp/out.wav"
truncate -s 100 "$tmp/cv06/model.safetensors"
expect "truncated checkpoint" "model.safetensors: header claims" --model "$tmp/cv06" --speaker ryan --text hi --out "$tmp/out.wav"
echo "test_cli_synth_errors: $pass passed, $fail failed"
[ $fail -eq 0 ]
