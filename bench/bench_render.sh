#!/usr/bin/env bash
# Aggregate render throughput (audio seconds per wall second) against
# --max-batch. Each batch size gets a job of max(2, 3B/4) items of mixed
# length (bench/render_job.py: about 2.5 utterances per item, so every slot
# has work to refill from), on one model.
# Usage: bench/bench_render.sh MODEL_DIR TAG [BACKEND] [BATCHES...]
#   e.g. bench/bench_render.sh models/Qwen3-TTS-12Hz-1.7B-CustomVoice 1.7B cuda 1 8 32 64 128 256
# QTTS_BUILD names the build folder (default build); QTTS_DECODE_THREAD
# (on, off, auto: the default) is passed to --decode-thread, and each result
# records what qtts made of it (the manifest's decode_thread) and where
# generation went (the manifest's stages: prefill, talker, code predictor,
# sampling seconds; prefills, steps, frames). QTTS_RENDER_ARGS adds qtts
# render options (e.g. "--sync-stages": device times per stage, slower), and
# QTTS_BENCH_SUFFIX names such a variant. Writes
# bench/results/render-<tag>-<backend>-<device>[-$QTTS_BENCH_SUFFIX].json.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$(realpath "$1"); tag=$2; backend=${3:-cpu}; shift 3 || true
batches=${*:-1 4 16}
dthread=${QTTS_DECODE_THREAD:-auto}
read -r -a extra <<< "${QTTS_RENDER_ARGS:-}"
exe=$(realpath "${QTTS_BUILD:-build}")/qtts
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
speaker=$("$exe" info --json "$model" | python3 -c "import json,sys; s=json.load(sys.stdin)['speakers']; print(s[0]['name'] if s and isinstance(s[0], dict) else (s[0] if s else ''))")
if [ "$backend" = cuda ]; then
  device=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
else
  device="$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
fi
dtag=$(echo "$device" | cut -d, -f1 | tr -c 'A-Za-z0-9\n' '-' | tr 'A-Z' 'a-z' | sed 's/--*/-/g; s/-$//')
results="$tmp/results.jsonl"
out="bench/results/render-$tag-$backend-$dtag${QTTS_BENCH_SUFFIX:+-$QTTS_BENCH_SUFFIX}.json"
write_json() {
python3 - "$out" "$model" "$backend" "$device" "$results" <<'PY'
import json, os, subprocess, sys
# QTTS_COMMIT: the device tool ships the working tree but not a refreshed .git, so the caller names the commit
commit = os.environ.get("QTTS_COMMIT") or subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
# (a git status there compares the tree with that stale .git: only meaningful without QTTS_COMMIT)
dirty = not os.environ.get("QTTS_COMMIT") and subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"],
                       capture_output=True, text=True).stdout.strip() != ""
json.dump({"benchmark": "render-throughput", "commit": commit + ("-dirty" if dirty else ""), "model": sys.argv[2],
           "backend": sys.argv[3], "device": sys.argv[4], "render_args": os.environ.get("QTTS_RENDER_ARGS", ""),
           "job": "per batch size B: max(2, 3B/4) items in 4 sessions, 1-4 sentences of 4-16 words, max_frames_per_token 6 "
                  "(bench/render_job.py); wall_seconds: the render itself (manifest summary, model loading excluded); "
                  "process_wall_seconds: the whole qtts process; decode_seconds: the codec decoder's time (beside generation "
                  "when decode_thread is true, on its own thread and backend)",
           "results": [json.loads(l) for l in open(sys.argv[5])]}, open(sys.argv[1], "w"), indent=2)
PY
}
: > "$results"
for b in $batches; do
  n=$(( b * 3 / 4 )); [ "$n" -ge 2 ] || n=2
  python3 bench/render_job.py "$tmp/job.json" "$model" "$speaker" "$n"
  start=$(date +%s.%N)
  "$exe" render "$tmp/job.json" --fresh --quiet --max-batch "$b" --backend "$backend" --decode-thread "$dthread" "${extra[@]}"
  end=$(date +%s.%N)
  python3 - "$tmp/out/manifest.json" "$b" "$n" "$start" "$end" >> "$results" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
s = m["summary"]
proc_wall = float(sys.argv[5]) - float(sys.argv[4])
def walk(o):
    if isinstance(o, dict):
        if "segments" in o and "frames" in o:
            yield o
        for v in o.values():
            yield from walk(v)
    elif isinstance(o, list):
        for v in o:
            yield from walk(v)
items = list(walk(m))
utts = sum(len(it["segments"]) for it in items)
frames = sum(it["frames"] for it in items)
wall = s["wall_seconds"]
print(json.dumps({"max_batch": int(sys.argv[2]), "items": int(sys.argv[3]), "utterances": utts, "frames": frames,
                  "audio_seconds": round(s["audio_seconds"], 2), "wall_seconds": round(wall, 3),
                  "process_wall_seconds": round(proc_wall, 3), "x_realtime": round(s["audio_seconds"] / wall, 2),
                  "frames_per_second": round(frames / wall, 1), "generate_seconds": round(s.get("generate_seconds", 0), 3),
                  "decode_seconds": round(s.get("decode_seconds", 0), 3), "decode_thread": s["decode_thread"],
                  "stages": s["stages"]}))
PY
  tail -1 "$results" >&2
  write_json   # after every batch size: a run cut short keeps what it measured
done
cat "$out"
