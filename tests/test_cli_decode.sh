#!/usr/bin/env bash
# qtts decode end to end on a tiny random speech tokenizer written here
# (python3 standard library only): success with the right length for wav,
# flac and ogg, and each bad input -> non-zero exit, a message naming the
# problem, and no output file left behind.
# Args: $1 qtts executable, $2 source dir, $3 binary dir.
set -u
QTTS=$1; BIN=$3
command -v python3 >/dev/null || { echo "skip: no python3"; exit 77; }
W=$(mktemp -d "$BIN/test_cli_decode.XXXXXX")
trap 'rm -rf "$W"' EXIT
fail=0; pass=0
ok()  { pass=$((pass+1)); }
bad() { echo "FAIL: $*" >&2; fail=$((fail+1)); }

python3 - "$W" <<'PY'
import json, random, struct, sys
d = sys.argv[1]; random.seed(7)
NQ, CB, CD, LAT, HID, INT, NL, H, KV, HD, DD = 4, 32, 16, 16, 16, 24, 2, 2, 1, 8, 16
T = []
def w(name, shape, scale=0.3, base=0.0):
    n = 1
    for s in shape: n *= s
    T.append((name, shape, [base + scale * (2 * random.random() - 1) for _ in range(n)]))
for k in range(NQ):
    p = "decoder.quantizer.rvq_first.vq.layers.0._codebook" if k == 0 else f"decoder.quantizer.rvq_rest.vq.layers.{k-1}._codebook"
    w(p + ".embedding_sum", [CB, CD // 2], 1.0); w(p + ".cluster_usage", [CB], 0.5, 1.5)
for q in ("first", "rest"): w(f"decoder.quantizer.rvq_{q}.output_proj.weight", [CD, CD // 2, 1])
w("decoder.pre_conv.conv.weight", [LAT, CD, 3], 0.2); w("decoder.pre_conv.conv.bias", [LAT], 0.1)
w("decoder.pre_transformer.input_proj.weight", [HID, LAT], 0.25); w("decoder.pre_transformer.input_proj.bias", [HID], 0.1)
for l in range(NL):
    p = f"decoder.pre_transformer.layers.{l}."
    w(p + "input_layernorm.weight", [HID], 0.2, 1.0); w(p + "post_attention_layernorm.weight", [HID], 0.2, 1.0)
    w(p + "self_attn.q_proj.weight", [H * HD, HID], 0.4); w(p + "self_attn.k_proj.weight", [KV * HD, HID], 0.4)
    w(p + "self_attn.v_proj.weight", [KV * HD, HID], 0.4); w(p + "self_attn.o_proj.weight", [HID, H * HD])
    w(p + "self_attn_layer_scale.scale", [HID], 0.5); w(p + "mlp_layer_scale.scale", [HID], 0.5)
    w(p + "mlp.gate_proj.weight", [INT, HID]); w(p + "mlp.up_proj.weight", [INT, HID]); w(p + "mlp.down_proj.weight", [HID, INT])
w("decoder.pre_transformer.norm.weight", [HID], 0.2, 1.0)
w("decoder.pre_transformer.output_proj.weight", [LAT, HID]); w("decoder.pre_transformer.output_proj.bias", [LAT], 0.1)
p = "decoder.upsample.0."
w(p + "0.conv.weight", [LAT, LAT, 2]); w(p + "0.conv.bias", [LAT], 0.1)
w(p + "1.dwconv.conv.weight", [LAT, 1, 7]); w(p + "1.dwconv.conv.bias", [LAT], 0.1)
w(p + "1.norm.weight", [LAT], 0.2, 1.0); w(p + "1.norm.bias", [LAT], 0.1)
w(p + "1.pwconv1.weight", [4 * LAT, LAT], 0.25); w(p + "1.pwconv1.bias", [4 * LAT], 0.1)
w(p + "1.pwconv2.weight", [LAT, 4 * LAT], 0.15); w(p + "1.pwconv2.bias", [LAT], 0.1); w(p + "1.gamma", [LAT], 0.5)
w("decoder.decoder.0.conv.weight", [DD, LAT, 7], 0.15); w("decoder.decoder.0.conv.bias", [DD], 0.1)
for b, r in enumerate((2, 3)):
    ci, co, n = DD >> b, DD >> (b + 1), b + 1
    w(f"decoder.decoder.{n}.block.0.alpha", [ci], 0.5); w(f"decoder.decoder.{n}.block.0.beta", [ci], 0.5)
    w(f"decoder.decoder.{n}.block.1.conv.weight", [ci, co, 2 * r], 0.25); w(f"decoder.decoder.{n}.block.1.conv.bias", [co], 0.1)
    for m in (2, 3, 4):
        p = f"decoder.decoder.{n}.block.{m}."
        for a in ("act1", "act2"): w(p + a + ".alpha", [co], 0.5); w(p + a + ".beta", [co], 0.5)
        w(p + "conv1.conv.weight", [co, co, 7], 0.2); w(p + "conv1.conv.bias", [co], 0.1)
        w(p + "conv2.conv.weight", [co, co, 1]); w(p + "conv2.conv.bias", [co], 0.1)
w("decoder.decoder.3.alpha", [DD // 4], 0.5); w("decoder.decoder.3.beta", [DD // 4], 0.5)
w("decoder.decoder.4.conv.weight", [1, DD // 4, 7], 0.1); w("decoder.decoder.4.conv.bias", [1], 0.01)
hdr, off = {}, 0
for name, shape, vals in T:
    hdr[name] = {"dtype": "F32", "shape": shape, "data_offsets": [off, off + 4 * len(vals)]}; off += 4 * len(vals)
h = json.dumps(hdr).encode(); h += b" " * (-len(h) % 8)
with open(f"{d}/model.safetensors", "wb") as f:
    f.write(struct.pack("<Q", len(h)) + h)
    for _, _, vals in T: f.write(struct.pack(f"<{len(vals)}f", *vals))
cfg = {"output_sample_rate": 24000, "decode_upsample_rate": 12, "decoder_config": {
    "codebook_size": CB, "codebook_dim": CD, "latent_dim": LAT, "hidden_size": HID, "intermediate_size": INT,
    "num_hidden_layers": NL, "num_attention_heads": H, "num_key_value_heads": KV, "head_dim": HD, "rms_norm_eps": 1e-5,
    "rope_theta": 10000, "layer_scale_initial_scale": 0.01, "sliding_window": 5, "num_quantizers": NQ,
    "num_semantic_quantizers": 1, "upsample_rates": [2, 3], "upsampling_ratios": [2], "decoder_dim": DD}}
json.dump(cfg, open(f"{d}/config.json", "w"))
def npy(path, rows, cols, dtype="<i8", fill=lambda i, j: (i * 7 + j * 3) % CB):
    hd = "{'descr': '%s', 'fortran_order': False, 'shape': (%d, %d), }" % (dtype, rows, cols)
    hd += " " * (-(len(hd) + 11) % 64) + "\n"
    fmt = {"<i8": "q", "<i4": "i", "<f4": "f"}[dtype]
    with open(path, "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(hd)) + hd.encode())
        f.write(struct.pack("<%d%s" % (rows * cols, fmt), *[fill(i, j) for i in range(rows) for j in range(cols)]))
npy(f"{d}/codes.npy", 40, NQ)
npy(f"{d}/codes_i32.npy", 9, NQ, "<i4")
npy(f"{d}/range.npy", 10, NQ, fill=lambda i, j: 2048 if (i, j) == (6, 2) else 1)
npy(f"{d}/neg.npy", 10, NQ, fill=lambda i, j: -1 if (i, j) == (2, 0) else 1)
npy(f"{d}/shape.npy", 10, 8)
npy(f"{d}/float.npy", 10, NQ, "<f4")
PY
[ -f "$W/model.safetensors" ] || { echo "FAIL: could not write the tiny model" >&2; exit 1; }

# success: wav length = frames * 12 at 24 kHz; chunked and full calls; int32 codes; flac and ogg
for args in "--chunk 0" "--chunk 7 --context 3" ""; do
  rm -f "$W/out.wav"
  if "$QTTS" decode --model "$W" --codes "$W/codes.npy" --out "$W/out.wav" $args 2>"$W/err"; then
    n=$(python3 -c "import wave,sys;w=wave.open(sys.argv[1]);print(w.getnframes(),w.getframerate(),w.getnchannels())" "$W/out.wav")
    [ "$n" = "480 24000 1" ] && ok || bad "decode $args: wav frames/rate/channels '$n', expected '480 24000 1'"
  else bad "decode $args failed: $(cat "$W/err")"; fi
done
"$QTTS" decode --model "$W" --codes "$W/codes_i32.npy" --out "$W/i32.wav" 2>"$W/err" &&
  [ "$(python3 -c "import wave,sys;print(wave.open(sys.argv[1]).getnframes())" "$W/i32.wav")" = 108 ] && ok || bad "int32 codes: $(cat "$W/err")"
for ext in flac ogg; do
  "$QTTS" decode --model "$W" --codes "$W/codes.npy" --out "$W/out.$ext" 2>"$W/err" && [ -s "$W/out.$ext" ] && ok || bad "$ext: $(cat "$W/err")"
done
ls "$W" | grep -q '\.tmp\.' && bad "temporary file left behind: $(ls "$W")" || ok

# bad input: expect non-zero exit, the message substring, and no output file
expect_fail() { # name, substring, args...
  local name=$1 sub=$2; shift 2
  rm -f "$W/bad.wav" "$W/bad.mp3"
  if "$QTTS" decode "$@" 2>"$W/err"; then bad "$name: exit 0"; return; fi
  grep -q -- "$sub" "$W/err" && ok || bad "$name: message lacks '$sub': $(cat "$W/err")"
  if ls "$W" | grep -q '^bad\.'; then bad "$name: output file left: $(ls "$W" | grep '^bad\.')"; else ok; fi
}
expect_fail "code out of range" "frame 6 codebook 2: code 2048" --model "$W" --codes "$W/range.npy" --out "$W/bad.wav"
expect_fail "negative code" "frame 2 codebook 0: code -1" --model "$W" --codes "$W/neg.npy" --out "$W/bad.wav"
expect_fail "wrong shape" "shape \[10, 8\], expected \[frames, 4\]" --model "$W" --codes "$W/shape.npy" --out "$W/bad.wav"
expect_fail "float codes" "integer array" --model "$W" --codes "$W/float.npy" --out "$W/bad.wav"
expect_fail "missing codes" "no such codes file" --model "$W" --codes "$W/nope.npy" --out "$W/bad.wav"
expect_fail "missing model" "config.json" --model "$W/nomodel" --codes "$W/codes.npy" --out "$W/bad.wav"
expect_fail "unknown extension" "unknown audio format" --model "$W" --codes "$W/codes.npy" --out "$W/bad.mp3"
expect_fail "unwritable folder" "not writable" --model "$W" --codes "$W/codes.npy" --out "$W/no/such/dir/bad.wav"
expect_fail "missing --out" "required" --model "$W" --codes "$W/codes.npy"
expect_fail "bad --chunk" "non-negative integer" --model "$W" --codes "$W/codes.npy" --out "$W/bad.wav" --chunk x
[ -e "$W/no" ] && bad "unwritable-folder case created $W/no" || ok
# the backend options every model-running command shares (src/cli/backend_opts.c)
expect_fail "bad --device" "expected a GPU index" --model "$W" --codes "$W/codes.npy" --out "$W/bad.wav" --device x
expect_fail "bad --cuda-graphs" "'maybe' is not on or off" --model "$W" --codes "$W/codes.npy" --out "$W/bad.wav" --cuda-graphs maybe
expect_fail "--device with cpu" "the cpu backend has no devices" --model "$W" --codes "$W/codes.npy" --out "$W/bad.wav" --backend cpu --device 1
expect_fail "unknown backend" "unknown backend 'nope'" --model "$W" --codes "$W/codes.npy" --out "$W/bad.wav" --backend nope
expect_fail "bad cuda:N" "expected cuda:N" --model "$W" --codes "$W/codes.npy" --out "$W/bad.wav" --backend cuda:x
# the CPU takes the CUDA choices and ignores them
rm -f "$W/opts.wav"
"$QTTS" decode --model "$W" --codes "$W/codes.npy" --out "$W/opts.wav" --backend cpu --cuda-graphs off --cuda-pdl on --cuda-persistent on \
  2>"$W/err" && cmp -s "$W/opts.wav" "$W/out.wav" && ok || bad "cpu with --cuda-* options: $(cat "$W/err")"

echo "test_cli_decode: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
