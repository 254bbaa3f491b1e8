#!/usr/bin/env bash
# CPU synthesis benchmark: frames/s, real-time factor and per-stage times of
# `qtts synth` on a full-size checkpoint (e.g. a random-weight one from
# `scripts/make_fixtures.py --full-size DIR`), with a fixed frame count
# (EOS ignored: benchmarks only). Writes bench/results/cpu-synth-<tag>-<host>.json.
# Usage: bench/bench_cpu.sh MODEL_DIR TAG [FRAMES] [SPEAKER]
set -euo pipefail
cd "$(dirname "$0")/.."
model=$1; tag=$2; frames=${3:-60}; speaker=${4:-ryan}
exe=build/qtts
[ -x "$exe" ] || { echo "bench: build first (scripts/setup.sh build)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
text="The quick brown fox jumps over the lazy dog, and then it runs far away into the forest."
/usr/bin/time -f "%M" -o "$tmp/rss" "$exe" synth --model "$model" --text "$text" --speaker "$speaker" --seed 1 \
  --max-frames "$frames" --ignore-eos --out "$tmp/out.wav" --stats-json "$tmp/stats.json" --quiet
host=$(hostname -s 2>/dev/null || echo host)
out="bench/results/cpu-synth-$tag-$host.json"
python3 - "$tmp/stats.json" "$tmp/rss" "$out" "$frames" <<'PY'
import json, os, platform, subprocess, sys
stats = json.load(open(sys.argv[1]))
cpu = "unknown"
for line in open("/proc/cpuinfo"):
    if line.startswith("model name"):
        cpu = line.split(":", 1)[1].strip(); break
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench/results"], capture_output=True, text=True).stdout.strip() != ""
res = {"benchmark": "cpu-synth", "commit": commit + ("-dirty" if dirty else ""),
       "device": f"{cpu}, {os.cpu_count()} cores (CPU backend)", "os": platform.platform(),
       "frames_requested": int(sys.argv[4]), "eos_ignored": True,
       "peak_memory_mb": round(int(open(sys.argv[2]).read().split()[-1]) / 1024.0, 1), "result": stats}
json.dump(res, open(sys.argv[3], "w"), indent=2)
print(json.dumps(res, indent=2))
PY
echo "bench: wrote $out" >&2
