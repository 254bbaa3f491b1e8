#!/usr/bin/env python3
"""A render benchmark job: N items of mixed length (1-4 sentences of 4-16
common words) in 4 sessions of one voice, bounded per utterance by
max_frames_per_token so that random-weight checkpoints (which seldom emit
EOS) still do a fixed amount of work.
Usage: render_job.py OUT.json MODEL_DIR SPEAKER N_ITEMS"""
import json
import random
import sys

out, model, speaker, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
random.seed(7)
words = "the a of and to in is was that it he she they for on with as his her at by from this had not but be".split()


def sentence(k):
    return " ".join(random.choice(words) for _ in range(k)).capitalize() + "."


items = [{"id": f"u{i}", "text": " ".join(sentence(random.randint(4, 16)) for _ in range(random.randint(1, 4)))}
         for i in range(n)]
voice = {"speaker": speaker} if speaker else {"instruct": "A calm narrator."}
job = {"model": model, "output": {"dir": "out", "format": "wav"},
       "defaults": {"seed": 1, "max_frames_per_token": 6, "max_tokens_per_utterance": 60},
       "sessions": [{"id": f"s{k}", "voice": voice, "items": items[k::4]} for k in range(4) if items[k::4]]}
json.dump(job, open(out, "w"), indent=1)
