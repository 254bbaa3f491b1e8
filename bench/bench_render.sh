#!/usr/bin/env bash
# Aggregate render throughput (audio seconds per wall second) against
# --max-batch, on a generated job of many utterances of mixed lengths.
# Usage: bench/bench_render.sh MODEL_DIR TAG [BACKEND] [BATCHES...]
#   e.g. bench/bench_render.sh models/Qwen3-TTS-12Hz-1.7B-CustomVoice 1.7B cuda 1 8 32 64 128 256
# The job uses max_frames_per_token to bound each utterance (EOS still ends
# one early), so random-weight checkpoints give a fixed amount of work.
# Writes bench/results/render-<tag>-<backend>-<host>.json.
set -euo pipefail
cd "$(dirname "$0")/.."
model=$(realpath "$1"); tag=$2; backend=${3:-cpu}; shift 3 || true
batches=${*:-1 4 16}
exe=$PWD/build/qtts
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
speaker=$("$exe" info --json "$model" | python3 -c "import json,sys; s=json.load(sys.stdin)['speakers']; print(s[0]['name'] if s and isinstance(s[0], dict) else (s[0] if s else ''))")
python3 - "$tmp/job.json" "$model" "$speaker" <<'PY'
import json, random, sys
random.seed(7)
words = "the a of and to in is was that it he she they for on with as his her at by from this had not but be".split()
def sentence(n): return " ".join(random.choice(words) for _ in range(n)).capitalize() + "."
items = []
for i in range(48):   # mixed lengths: 1 to 6 sentences of 4 to 24 words
    items.append({"id": f"u{i}", "text": " ".join(sentence(random.randint(4, 24)) for _ in range(random.randint(1, 6)))})
voice = {"speaker": sys.argv[3]} if sys.argv[3] else {"instruct": "A calm narrator."}
job = {"model": sys.argv[2], "output": {"dir": "out", "format": "wav"},
       "defaults": {"seed": 1, "max_frames_per_token": 6, "max_tokens_per_utterance": 60},
       "sessions": [{"id": f"s{k}", "voice": voice, "items": items[k::4]} for k in range(4)]}
json.dump(job, open(sys.argv[1], "w"), indent=1)
PY
results="["
for b in $batches; do
  start=$(date +%s.%N)
  "$exe" render "$tmp/job.json" --fresh --quiet --max-batch "$b" --backend "$backend"
  end=$(date +%s.%N)
  audio=$(python3 -c "import json; print(json.load(open('$tmp/out/manifest.json'))['summary']['audio_seconds'])")
  wall=$(python3 -c "print($end - $start)")
  echo "max-batch $b: $audio s of audio in $wall s" >&2
  results="$results{\"max_batch\": $b, \"audio_seconds\": $audio, \"wall_seconds\": $wall, \"x_realtime\": $(python3 -c "print(round($audio / $wall, 3))")},"
done
results="${results%,}]"
host=$(hostname -s 2>/dev/null || echo host)
out="bench/results/render-$tag-$backend-$host.json"
python3 - "$out" "$model" "$backend" "$results" <<'PY'
import json, os, subprocess, sys
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "unknown")
gpu = subprocess.run(["sh", "-c", "nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1"], capture_output=True, text=True).stdout.strip()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"], capture_output=True, text=True).stdout.strip() != ""
json.dump({"benchmark": "render-throughput", "commit": commit + ("-dirty" if dirty else ""), "model": sys.argv[2],
           "backend": sys.argv[3], "device": gpu if sys.argv[3] == "cuda" and gpu else f"{cpu}, {os.cpu_count()} cores",
           "job": "48 items, 4 sessions, 1-6 sentences each, max_frames_per_token 6", "results": json.loads(sys.argv[4])},
          open(sys.argv[1], "w"), indent=2)
print(open(sys.argv[1]).read())
PY
