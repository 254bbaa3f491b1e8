#!/usr/bin/env python3
"""Reference for test_codec: the OFFICIAL Qwen3TTSTokenizerV2Decoder (from the
installed qwen_tts package) built with a tiny config and seeded random weights,
run in fp32 on CPU. Writes OUT/{config.json, model.safetensors, codes.npy,
wav_full.npy, wav_chunked.npy} (chunked_decode with chunk 10, context 3).
Usage: python gen_codec_tiny_ref.py OUT_DIR   (needs torch + qwen_tts)."""
import json, os, sys

import numpy as np
import torch
from safetensors.torch import save_file
from qwen_tts.core.tokenizer_12hz.configuration_qwen3_tts_tokenizer_v2 import Qwen3TTSTokenizerV2DecoderConfig
from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import Qwen3TTSTokenizerV2Decoder

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
torch.manual_seed(1234)
dec_cfg = dict(codebook_size=32, codebook_dim=16, latent_dim=16, hidden_size=16, intermediate_size=24,
               num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=8, rms_norm_eps=1e-5,
               rope_theta=10000, layer_scale_initial_scale=0.01, sliding_window=5, num_quantizers=4,
               num_semantic_quantizers=1, upsample_rates=[2, 3], upsampling_ratios=[2], decoder_dim=16,
               max_position_embeddings=8000, hidden_act="silu")
cfg = Qwen3TTSTokenizerV2DecoderConfig(**dec_cfg)
cfg._attn_implementation = "eager"
model = Qwen3TTSTokenizerV2Decoder(cfg).float().eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        u = torch.rand(p.shape) * 2 - 1
        if name.endswith(("alpha", "beta")):
            p.copy_(0.5 * u)
        elif name.endswith("cluster_usage"):
            p.copy_(1.5 + u)
            p[3] = 0.0  # exercises clamp(min=eps); codes avoid row 3
        elif "norm" in name and name.endswith("weight"):
            p.copy_(1.0 + 0.2 * u)
        elif name.endswith(("scale", "gamma")):
            p.copy_(0.5 * u)
        elif name.endswith("embedding_sum"):
            p.copy_(u)
        elif name.endswith("bias"):
            p.copy_(0.1 * u)
        else:
            fan_in = int(np.prod(p.shape[1:])) if p.dim() > 1 else 1
            p.copy_(u * min(0.4, 1.2 / fan_in ** 0.5))
sd = {"decoder." + k: v.contiguous() for k, v in model.state_dict().items()}
save_file(sd, os.path.join(out, "model.safetensors"))
json.dump({"output_sample_rate": 24000, "decode_upsample_rate": 12, "decoder_config": dec_cfg},
          open(os.path.join(out, "config.json"), "w"), indent=1)
T = 47
codes = torch.randint(0, 32, (T, 4))
codes[codes == 3] = 4
np.save(os.path.join(out, "codes.npy"), codes.numpy().astype(np.int64))
with torch.no_grad():
    x = codes.T.unsqueeze(0)  # [1, 4, T]
    full = model(x)[0, 0].numpy().astype(np.float32)
    chunked = model.chunked_decode(x, chunk_size=10, left_context_size=3)[0, 0].numpy().astype(np.float32)
np.save(os.path.join(out, "wav_full.npy"), full)
np.save(os.path.join(out, "wav_chunked.npy"), chunked)
print("frames", T, "samples", full.shape[0], "rms", float(np.sqrt((full ** 2).mean())),
      "clipped", int((np.abs(full) >= 1).sum()))
