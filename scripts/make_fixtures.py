#!/usr/bin/env python3
"""Build the qtts reference fixtures from the OFFICIAL Qwen3-TTS Python package.

Ground truth = PyPI `qwen-tts` 0.1.1 (QwenLM/Qwen3-TTS), run on CPU in fp32.

Environment (exactly what was used to produce tests/fixtures/):

    python3.11 -m venv venv
    venv/bin/pip install qwen-tts==0.1.1 transformers==4.57.3 accelerate==1.12.0 \
        torch==2.11.0 torchaudio==2.11.0
    # (torch/torchaudio wheels: 2.11.0+cu130 from PyPI; only the CPU is used)
    # zstd (the command-line tool) must be on PATH.

Run (from the repository root):

    venv/bin/python scripts/make_fixtures.py                 # writes tests/fixtures/
    venv/bin/python scripts/make_fixtures.py --out DIR       # elsewhere
    venv/bin/python scripts/make_fixtures.py --full-size OUT_DIR [--sizes 0.6B,1.7B]
        # full-size random-weight checkpoints (bf16 main model + f32 speech tokenizer),
        # NEVER committed; prints per-component parameter counts.

The Qwen2 text-tokenizer files are taken from ../shared/data/qwen2-tokenizer (override with
--tokenizer-dir); they are copied only into a temporary load directory, never committed.

Reproducibility: all randomness comes from fixed seeds (torch.Generator / numpy RandomState),
torch runs single-threaded on CPU with deterministic algorithms, everything in fp32 except
the saved main-model weights (bf16, like the real checkpoints; bf16 values are exact in fp32
so the fp32 reference run sees exactly the stored weights). zstd -19 output is deterministic.
Rerunning reproduces every file bit-for-bit (checked by running twice and comparing sha256).

How the references are produced (official code paths):
  * Models are built with the package's own classes (Qwen3TTSConfig /
    Qwen3TTSForConditionalGeneration, Qwen3TTSTokenizerV2Config / Qwen3TTSTokenizerV2Model)
    and written with save_pretrained, so tensor names / config keys are the official ones.
  * Every case is run through the public wrapper qwen_tts.Qwen3TTSModel
    (from_pretrained -> generate_custom_voice / generate_voice_design / generate_voice_clone)
    with do_sample=False, subtalker_dosample=False (greedy), other defaults untouched
    (repetition_penalty 1.05 from generation_config.json).
    Intermediate tensors are captured with forward hooks on the official modules
    (talker, talker.model, talker.code_predictor) and by wrapping (not replacing)
    Qwen3TTSForConditionalGeneration.generate and talker.generate to record their
    arguments/results. Nothing of the computation is re-implemented here.
  * Base x-vector: speaker/xvector.npy comes from the official
    Qwen3TTSForConditionalGeneration.extract_speaker_embedding (mel_spectrogram + ECAPA);
    voice-clone cases pass it as VoiceClonePromptItem.ref_spk_embedding (the documented
    create_voice_clone_prompt output type), and ICL cases pass ref_code directly
    (random codes, ref_codes.npy) instead of running the Mimi encoder.
  * Codec: Qwen3TTSTokenizerV2Decoder.forward (one call) and .chunked_decode(codes,
    chunk_size, left_context_size) (the official function, called with explicit params).
"""
import argparse
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import numpy as np

SEED = 20260123
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# ---------------------------------------------------------------------------------------
# real constants (spec §2, checked against configuration_qwen3_tts.py usage)
# ---------------------------------------------------------------------------------------
CODEC_LANGUAGE_ID = {
    "chinese": 2055, "english": 2050, "german": 2053, "italian": 2070, "portuguese": 2071,
    "spanish": 2054, "japanese": 2058, "korean": 2064, "french": 2061, "russian": 2069,
    "beijing_dialect": 2074, "sichuan_dialect": 2062,
}
SPK_ID = {"serena": 3066, "vivian": 3065, "uncle_fu": 3010, "ryan": 3061, "aiden": 2861,
          "ono_anna": 2873, "sohee": 2864, "eric": 2875, "dylan": 2878}
SPK_IS_DIALECT = {k: False for k in SPK_ID}
SPK_IS_DIALECT["eric"] = "sichuan_dialect"
SPK_IS_DIALECT["dylan"] = "beijing_dialect"
ROPE_SCALING_TALKER = {"interleaved": True, "mrope_section": [24, 20, 20],
                       "rope_type": "default", "type": "default"}
CODEC_IDS = dict(codec_pad_id=2148, codec_bos_id=2149, codec_eos_token_id=2150,
                 codec_think_id=2154, codec_nothink_id=2155, codec_think_bos_id=2156,
                 codec_think_eos_id=2157)
SPECIAL_TEXT_IDS = [151643, 151644, 151645, 151671, 151672, 151673, 77091, 198, 872]
GENERATION_CONFIG = {
    "do_sample": True, "repetition_penalty": 1.05, "temperature": 0.9, "top_p": 1.0,
    "top_k": 50, "subtalker_dosample": True, "subtalker_temperature": 0.9,
    "subtalker_top_p": 1.0, "subtalker_top_k": 50, "max_new_tokens": 8192,
}
SPEECH_PREPROCESSOR = {
    "chunk_length_s": None, "feature_extractor_type": "EncodecFeatureExtractor",
    "feature_size": 1, "overlap": None, "padding_side": "right", "padding_value": 0.0,
    "return_attention_mask": True, "sampling_rate": 24000,
}

# ---------------------------------------------------------------------------------------
# tiny model definitions
# ---------------------------------------------------------------------------------------
TALKER_TINY = dict(hidden_size=64, intermediate_size=83, num_hidden_layers=3,
                   num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                   text_hidden_size=32)
PRED_TINY_PROJ = dict(hidden_size=48, intermediate_size=67, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, head_dim=16)
PRED_TINY_IDENT = dict(hidden_size=64, intermediate_size=67, num_hidden_layers=2,
                       num_attention_heads=4, num_key_value_heads=2, head_dim=16)

TINY_MODELS = {
    # 1.7B-style: predictor hidden != talker hidden -> small_to_mtp_projection (Linear+bias)
    "custom_voice": dict(tts_model_type="custom_voice", tts_model_size="1b7",
                         pred=PRED_TINY_PROJ, speakers=True),
    "voice_design": dict(tts_model_type="voice_design", tts_model_size="1b7",
                         pred=PRED_TINY_PROJ, speakers=False),
    # 0.6B-style: predictor hidden == talker hidden -> small_to_mtp_projection = Identity
    "base": dict(tts_model_type="base", tts_model_size="0b6",
                 pred=PRED_TINY_IDENT, speakers=False),
}

SPEECH_TOK_TINY_DECODER = dict(
    codebook_size=2048, codebook_dim=32, latent_dim=32, hidden_size=32,
    intermediate_size=40, num_hidden_layers=2, num_attention_heads=4,
    num_key_value_heads=4, head_dim=16, sliding_window=8, rope_theta=10000,
    rms_norm_eps=1e-5, layer_scale_initial_scale=0.01, max_position_embeddings=8000,
    num_quantizers=16, num_semantic_quantizers=1, semantic_codebook_size=4096,
    vector_quantization_hidden_dimension=32, upsample_rates=[8, 5, 4, 3],
    upsampling_ratios=[2, 2], decoder_dim=48, hidden_act="silu", attention_bias=False,
    attention_dropout=0.0,
)
SPEECH_TOK_TINY_ENCODER = dict(
    sampling_rate=24000, audio_channels=1, num_filters=4, kernel_size=7, last_kernel_size=3,
    residual_kernel_size=3, num_residual_layers=1, dilation_growth_rate=2, compress=2,
    upsampling_ratios=[8, 6, 5, 4], use_causal_conv=True, pad_mode="constant",
    use_conv_shortcut=False, trim_right_ratio=1.0, hidden_size=32, num_hidden_layers=1,
    num_attention_heads=2, num_key_value_heads=2, head_dim=16, intermediate_size=48,
    hidden_act="gelu", norm_eps=1e-5, layer_scale_initial_scale=0.01, rope_theta=10000.0,
    sliding_window=250, max_position_embeddings=8000, num_quantizers=16,
    num_semantic_quantizers=1, codebook_size=2048, codebook_dim=16,
    vector_quantization_hidden_dimension=16, upsample_groups=32, frame_rate=12.5,
    use_streaming=False,
)

# ---------------------------------------------------------------------------------------
# fixture prompts
# ---------------------------------------------------------------------------------------
REF_TEXT = "The quick brown fox jumps over the lazy dog."
CASES = [
    # name, model, mode, kwargs
    ("cv_ryan_en_ns", "custom_voice", "custom_voice",
     dict(text="Hello world, this is a small test of the speech engine.", speaker="Ryan",
          language="English", instruct=None, non_streaming_mode=True)),
    ("cv_ryan_en_st", "custom_voice", "custom_voice",
     dict(text="Hello world, this is a small test of the speech engine.", speaker="Ryan",
          language="English", instruct=None, non_streaming_mode=False)),
    ("cv_eric_auto_ns", "custom_voice", "custom_voice",
     dict(text="今天天气很好，我们去公园散步吧。", speaker="Eric",
          language="Auto", instruct=None, non_streaming_mode=True)),
    ("cv_eric_auto_st", "custom_voice", "custom_voice",
     dict(text="今天天气很好，我们去公园散步吧。", speaker="Eric",
          language="Auto", instruct=None, non_streaming_mode=False)),
    ("cv_vivian_instruct_ns", "custom_voice", "custom_voice",
     dict(text="I can't believe it's already 2026!", speaker="Vivian",
          language="English", instruct="Speak in a very happy, excited tone.",
          non_streaming_mode=True)),
    ("cv_vivian_instruct_st", "custom_voice", "custom_voice",
     dict(text="I can't believe it's already 2026!", speaker="Vivian",
          language="English", instruct="Speak in a very happy, excited tone.",
          non_streaming_mode=False)),
    ("vd_en_ns", "voice_design", "voice_design",
     dict(text="Welcome to the future of speech synthesis.",
          instruct="A deep, calm male voice with a slight British accent.",
          language="English", non_streaming_mode=True)),
    ("vd_auto_st", "voice_design", "voice_design",
     dict(text="Welcome to the future of speech synthesis.",
          instruct="A deep, calm male voice with a slight British accent.",
          language="Auto", non_streaming_mode=False)),
    ("base_xvec_ns", "base", "voice_clone_xvector",
     dict(text="Cloning a voice from a short reference clip.", language="English",
          non_streaming_mode=True)),
    ("base_xvec_st", "base", "voice_clone_xvector",
     dict(text="Cloning a voice from a short reference clip.", language="English",
          non_streaming_mode=False)),
    # ICL, streaming, text longer than ref codec run -> non-trivial trailing text queue
    ("base_icl_st", "base", "voice_clone_icl",
     dict(text="Cloning a voice from a short reference clip, with the reference text too.",
          language="English", non_streaming_mode=False, ref_text=REF_TEXT, t_ref=12)),
    # ICL, streaming, text shorter than ref codec run -> text padded with tts_pad
    ("base_icl_st_short", "base", "voice_clone_icl",
     dict(text="Short one.", language="Auto", non_streaming_mode=False, ref_text=REF_TEXT,
          t_ref=30)),
    ("base_icl_ns", "base", "voice_clone_icl",
     dict(text="Cloning a voice from a short reference clip, with the reference text too.",
          language="English", non_streaming_mode=True, ref_text=REF_TEXT, t_ref=12)),
]
WAV_CASES = {"cv_ryan_en_ns", "base_icl_st"}   # cases that also store the decoded audio
MAX_NEW_TOKENS = 66      # -> at most 65 frames (the last sampled c0 never gets residuals)
CP_FRAMES = 4            # code-predictor logits stored for the first CP_FRAMES frames
CODEC_T = 96
CODEC_CHUNK = dict(chunk_size=40, left_context_size=10)


def build_assistant_text(t):
    return f"<|im_start|>assistant\n{t}<|im_end|>\n<|im_start|>assistant\n"


def build_ref_text(t):
    return f"<|im_start|>assistant\n{t}<|im_end|>\n"


def build_instruct_text(t):
    return f"<|im_start|>user\n{t}<|im_end|>\n"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def zst(path, keep=False):
    subprocess.run(["zstd", "-19", "-q", "-f", "--no-progress", path, "-o", path + ".zst"],
                   check=True)
    if not keep:
        os.remove(path)
    return path + ".zst"


def save_npy(dirpath, name, arr, index, zlimit=64 * 1024):
    """Write name.npy (or name.npy.zst when larger than zlimit); record shape/dtype."""
    arr = np.ascontiguousarray(arr)
    p = os.path.join(dirpath, name + ".npy")
    np.save(p, arr, allow_pickle=False)
    fname = name + ".npy"
    if os.path.getsize(p) > zlimit:
        zst(p)
        fname += ".zst"
    index[fname] = {"shape": list(arr.shape), "dtype": str(arr.dtype)}
    return fname


def qrandn(gen, shape, std, torch):
    """Normal(0,1) rounded to multiples of 1/2 (clipped to +-3), times std: few distinct
    values -> the bf16/f32 files compress well, but activations are generic."""
    x = torch.randn(shape, generator=gen, dtype=torch.float32)
    x = torch.clamp(torch.round(x * 2.0) / 2.0, -3.0, 3.0)
    return x * std


def init_tiny_params(model, seed, torch, used_text_ids=None, kind="tts"):
    """Deterministic, non-degenerate random init of every parameter and buffer that is saved.
    Iterates names in sorted order, one generator -> independent of module registration."""
    gen = torch.Generator().manual_seed(seed)
    modules = dict(model.named_modules())
    nn = torch.nn
    with torch.no_grad():
        params = dict(model.named_parameters())
        params.update({k: v for k, v in model.named_buffers()
                       if k in model.state_dict() and v.is_floating_point()})
        for name in sorted(params):
            p = params[name]
            mod_name, _, leaf = name.rpartition(".")
            mod = modules.get(mod_name)
            shape = tuple(p.shape)
            if name.endswith("text_embedding.weight"):
                w = torch.zeros(shape)
                ids = torch.tensor(sorted(used_text_ids), dtype=torch.long)
                w[ids] = qrandn(gen, (len(ids), shape[1]), 1.0, torch)
            elif leaf in ("cluster_usage",):
                w = torch.tensor([0.5, 1.0, 2.0, 4.0])[
                    torch.randint(0, 4, shape, generator=gen)]
            elif leaf in ("embedding_sum", "embed_sum"):
                us = params.get(name.rsplit(".", 1)[0] + ".cluster_usage")
                w = qrandn(gen, shape, 1.0, torch)
                if us is not None:
                    w = w * us.detach().float()[:, None]   # -> codebook entries ~ N(0,1)
            elif leaf == "initialized":
                w = torch.ones(shape)
            elif leaf == "alpha":                      # SnakeBeta, log-space
                w = qrandn(gen, shape, 0.2, torch)
            elif leaf == "beta":                       # SnakeBeta, log-space: 1/beta ~ 0.37
                w = 1.0 + qrandn(gen, shape, 0.2, torch)
            elif leaf == "scale" or leaf == "gamma":   # layer scales / ConvNeXt gamma
                w = 0.5 + qrandn(gen, shape, 0.1, torch)
            elif leaf == "bias":
                w = qrandn(gen, shape, 0.05, torch)
            elif isinstance(mod, (nn.LayerNorm,)) or (leaf == "weight" and len(shape) == 1):
                w = 1.0 + qrandn(gen, shape, 0.1, torch)     # RMSNorm / LayerNorm weights
            elif isinstance(mod, nn.Embedding):
                w = qrandn(gen, shape, 0.5, torch)
            elif isinstance(mod, nn.ConvTranspose1d):
                fan_in = shape[0] * shape[2] / mod.stride[0]
                w = qrandn(gen, shape, 1.0 / np.sqrt(fan_in), torch)
            elif len(shape) >= 2:                      # Linear / Conv1d
                fan_in = int(np.prod(shape[1:]))
                w = qrandn(gen, shape, 1.0 / np.sqrt(fan_in), torch)
                if kind == "codec" and name.startswith("decoder.decoder."):
                    # keep the vocoder from blowing up (SnakeBeta adds a positive term and
                    # every residual unit adds its input): damp residual branches + output
                    if ".conv2." in name:
                        w = w * 0.25
                    if name.startswith("decoder.decoder.6."):
                        w = w * 0.2
            else:
                raise RuntimeError(f"unhandled parameter {name} {shape}")
            p.copy_(w.to(p.dtype))
        if kind == "tts":
            # keep codec EOS (2150) rare so greedy runs last >= 64 frames (documented)
            model.talker.codec_head.weight[CODEC_IDS["codec_eos_token_id"]] *= 0.5


def tiny_tts_config(name, spec):
    from qwen_tts.core.models import Qwen3TTSConfig
    talker = dict(TALKER_TINY)
    talker.update(
        vocab_size=3072, text_vocab_size=151936, num_code_groups=16, hidden_act="silu",
        rms_norm_eps=1e-6, rope_theta=1000000, rope_scaling=dict(ROPE_SCALING_TALKER),
        max_position_embeddings=32768, attention_bias=False, attention_dropout=0.0,
        use_sliding_window=False, sliding_window=None, position_id_per_seconds=13,
        initializer_range=0.02, use_cache=True, tie_word_embeddings=False,
        codec_language_id=dict(CODEC_LANGUAGE_ID),
        spk_id=dict(SPK_ID) if spec["speakers"] else {},
        spk_is_dialect=dict(SPK_IS_DIALECT) if spec["speakers"] else {},
        **CODEC_IDS,
    )
    pred = dict(spec["pred"])
    pred.update(vocab_size=2048, num_code_groups=16, hidden_act="silu", rms_norm_eps=1e-6,
                rope_theta=1000000, rope_scaling=None, max_position_embeddings=65536,
                attention_bias=False, attention_dropout=0.0, use_sliding_window=False,
                initializer_range=0.02, use_cache=True, tie_word_embeddings=False)
    talker["code_predictor_config"] = pred
    kw = dict(talker_config=talker, tokenizer_type="qwen3_tts_tokenizer_12hz",
              tts_model_size=spec["tts_model_size"], tts_model_type=spec["tts_model_type"],
              im_start_token_id=151644, im_end_token_id=151645, tts_pad_token_id=151671,
              tts_bos_token_id=151672, tts_eos_token_id=151673, assistant_token_id=77091,
              architectures=["Qwen3TTSForConditionalGeneration"])
    if spec["tts_model_type"] == "base":
        kw["speaker_encoder_config"] = dict(
            mel_dim=128, enc_dim=TALKER_TINY["hidden_size"],
            enc_channels=[32, 32, 32, 32, 96], enc_kernel_sizes=[5, 3, 3, 3, 1],
            enc_dilations=[1, 2, 3, 4, 1], enc_attention_channels=16,
            enc_res2net_scale=8, enc_se_channels=16, sample_rate=24000)
    return Qwen3TTSConfig(**kw)


def full_tts_config(size, model_type):
    from qwen_tts.core.models import Qwen3TTSConfig
    H, I = (1024, 3072) if size == "0.6B" else (2048, 6144)
    talker = dict(
        hidden_size=H, intermediate_size=I, num_hidden_layers=28, num_attention_heads=16,
        num_key_value_heads=8, head_dim=128, text_hidden_size=2048, vocab_size=3072,
        text_vocab_size=151936, num_code_groups=16, hidden_act="silu", rms_norm_eps=1e-6,
        rope_theta=1000000, rope_scaling=dict(ROPE_SCALING_TALKER),
        max_position_embeddings=32768, attention_bias=False, attention_dropout=0.0,
        use_sliding_window=False, sliding_window=None, position_id_per_seconds=13,
        codec_language_id=dict(CODEC_LANGUAGE_ID),
        spk_id=dict(SPK_ID) if model_type == "custom_voice" else {},
        spk_is_dialect=dict(SPK_IS_DIALECT) if model_type == "custom_voice" else {},
        **CODEC_IDS)
    talker["code_predictor_config"] = dict(
        hidden_size=1024, intermediate_size=3072, num_hidden_layers=5, num_attention_heads=16,
        num_key_value_heads=8, head_dim=128, vocab_size=2048, num_code_groups=16,
        hidden_act="silu", rms_norm_eps=1e-6, rope_theta=1000000, rope_scaling=None,
        max_position_embeddings=65536, attention_bias=False, use_sliding_window=False)
    kw = dict(talker_config=talker, tokenizer_type="qwen3_tts_tokenizer_12hz",
              tts_model_size="0b6" if size == "0.6B" else "1b7", tts_model_type=model_type,
              assistant_token_id=77091, architectures=["Qwen3TTSForConditionalGeneration"])
    if model_type == "base":
        kw["speaker_encoder_config"] = dict(enc_dim=H, sample_rate=24000)
    return Qwen3TTSConfig(**kw)


def full_speech_tokenizer_config():
    from qwen_tts.core.tokenizer_12hz.configuration_qwen3_tts_tokenizer_v2 import \
        Qwen3TTSTokenizerV2Config
    dec = dict(codebook_size=2048, codebook_dim=512, latent_dim=1024, hidden_size=512,
               intermediate_size=1024, num_hidden_layers=8, num_attention_heads=16,
               num_key_value_heads=16, head_dim=64, attention_bias=False, sliding_window=72,
               rope_theta=10000, rms_norm_eps=1e-5, layer_scale_initial_scale=0.01,
               max_position_embeddings=8000, num_quantizers=16, num_semantic_quantizers=1,
               semantic_codebook_size=4096, vector_quantization_hidden_dimension=512,
               upsample_rates=[8, 5, 4, 3], upsampling_ratios=[2, 2], decoder_dim=1536,
               hidden_act="silu", attention_dropout=0.0)
    enc = dict(SPEECH_TOK_TINY_ENCODER)
    enc.update(num_filters=64, hidden_size=512, num_hidden_layers=8, num_attention_heads=8,
               num_key_value_heads=8, head_dim=64, intermediate_size=2048, num_quantizers=32,
               codebook_dim=256, vector_quantization_hidden_dimension=256,
               upsample_groups=512)
    return Qwen3TTSTokenizerV2Config(
        encoder_config=enc, decoder_config=dec, encoder_valid_num_quantizers=16,
        input_sample_rate=24000, output_sample_rate=24000, decode_upsample_rate=1920,
        encode_downsample_rate=1920, architectures=["Qwen3TTSTokenizerV2Model"])


def tiny_speech_tokenizer_config():
    from qwen_tts.core.tokenizer_12hz.configuration_qwen3_tts_tokenizer_v2 import \
        Qwen3TTSTokenizerV2Config
    return Qwen3TTSTokenizerV2Config(
        encoder_config=dict(SPEECH_TOK_TINY_ENCODER), decoder_config=dict(SPEECH_TOK_TINY_DECODER),
        encoder_valid_num_quantizers=16, input_sample_rate=24000, output_sample_rate=24000,
        decode_upsample_rate=1920, encode_downsample_rate=1920,
        architectures=["Qwen3TTSTokenizerV2Model"])


def fix_saved_config(model_dir, is_base):
    """Official-package quirk: Qwen3TTSSpeakerEncoderConfig.__init__ takes no **kwargs and never
    calls PretrainedConfig.__init__, yet save_pretrained serialises it with a "model_type": ""
    key, which Qwen3TTSConfig(**config_dict) then rejects (TypeError) on load. Real checkpoints
    carry only {"enc_dim", "sample_rate"} for Base and no speaker_encoder_config otherwise, so
    drop the stray key (Base) / the whole sub-config (CustomVoice, VoiceDesign)."""
    p = os.path.join(model_dir, "config.json")
    with open(p, encoding="utf-8") as f:
        cfg = json.load(f)
    if is_base:
        cfg["speaker_encoder_config"].pop("model_type", None)
    else:
        cfg.pop("speaker_encoder_config", None)
    with open(p, "w", encoding="utf-8") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)
        f.write("\n")


def count_params(module):
    return sum(p.numel() for p in module.parameters())


def write_json(path, obj):
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, indent=2, ensure_ascii=False, sort_keys=False)
        f.write("\n")


def setup_torch():
    import torch
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    torch.manual_seed(SEED)
    return torch


# ---------------------------------------------------------------------------------------
# full-size mode
# ---------------------------------------------------------------------------------------
def full_size(out_dir, sizes):
    torch = setup_torch()
    torch.set_num_threads(os.cpu_count() or 1)
    from qwen_tts.core.models import Qwen3TTSForConditionalGeneration
    from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import \
        Qwen3TTSTokenizerV2Model
    os.makedirs(out_dir, exist_ok=True)
    report = {}
    st_dir = os.path.join(out_dir, "_speech_tokenizer")
    if not os.path.exists(os.path.join(st_dir, "model.safetensors")):
        torch.manual_seed(SEED)
        st = Qwen3TTSTokenizerV2Model(full_speech_tokenizer_config()).float().eval()
        print(f"speech tokenizer: decoder {count_params(st.decoder)/1e6:.1f} M, "
              f"encoder {count_params(st.encoder)/1e6:.1f} M (f32)", flush=True)
        report["speech_tokenizer"] = {"decoder": count_params(st.decoder),
                                      "encoder": count_params(st.encoder)}
        st.save_pretrained(st_dir, max_shard_size="100GB")
        write_json(os.path.join(st_dir, "preprocessor_config.json"), SPEECH_PREPROCESSOR)
        del st
    for size in sizes:
        for mtype in (["custom_voice", "base"] if size == "0.6B" else ["custom_voice"]):
            name = f"Qwen3-TTS-12Hz-{size}-{'CustomVoice' if mtype == 'custom_voice' else 'Base'}"
            d = os.path.join(out_dir, name)
            torch.manual_seed(SEED)
            cfg = full_tts_config(size, mtype)
            old = torch.get_default_dtype()
            torch.set_default_dtype(torch.bfloat16)     # never materialise fp32
            try:
                m = Qwen3TTSForConditionalGeneration(cfg).eval()
            finally:
                torch.set_default_dtype(old)
            t = m.talker
            comp = {
                "text_embedding": count_params(t.model.text_embedding),
                "text_projection": count_params(t.text_projection),
                "codec_embedding": count_params(t.model.codec_embedding),
                "codec_head": count_params(t.codec_head),
                "talker_layers": count_params(t.model.layers),
                "talker_final_norm": count_params(t.model.norm),
                "predictor_layers+norm": count_params(t.code_predictor.model.layers)
                + count_params(t.code_predictor.model.norm),
                "predictor_codec_embedding": count_params(t.code_predictor.model.codec_embedding),
                "predictor_lm_head": count_params(t.code_predictor.lm_head),
                "small_to_mtp_projection": count_params(t.code_predictor.small_to_mtp_projection),
                "speaker_encoder": count_params(m.speaker_encoder) if m.speaker_encoder is not None else 0,
            }
            comp["total"] = count_params(m)
            print(name, json.dumps({k: f"{v/1e6:.3f} M" for k, v in comp.items()}, indent=1),
                  flush=True)
            report[name] = comp
            m.save_pretrained(d, max_shard_size="100GB")
            fix_saved_config(d, mtype == "base")
            write_json(os.path.join(d, "generation_config.json"), GENERATION_CONFIG)
            shutil.copytree(st_dir, os.path.join(d, "speech_tokenizer"), dirs_exist_ok=True)
            del m
    write_json(os.path.join(out_dir, "param_counts.json"), report)


# ---------------------------------------------------------------------------------------
# tiny fixtures
# ---------------------------------------------------------------------------------------
def main_fixtures(out, tok_dir):
    torch = setup_torch()
    import transformers
    import qwen_tts
    from importlib.metadata import version
    from transformers import AutoTokenizer
    from qwen_tts import Qwen3TTSModel
    from qwen_tts.inference.qwen3_tts_model import VoiceClonePromptItem
    from qwen_tts.core.models import Qwen3TTSForConditionalGeneration
    from qwen_tts.core.models.modeling_qwen3_tts import mel_spectrogram
    from qwen_tts.core.tokenizer_12hz.modeling_qwen3_tts_tokenizer_v2 import \
        Qwen3TTSTokenizerV2Model

    rng = np.random.RandomState(SEED)
    os.makedirs(out, exist_ok=True)
    for sub in ("models", "cases", "codec", "speaker"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        os.makedirs(os.path.join(out, sub))
    work = tempfile.mkdtemp(prefix="qtts_fixtures_")

    # ---- text ids used by the prompts (real Qwen2 tokenizer) ---------------------------
    tok = AutoTokenizer.from_pretrained(tok_dir)
    used = set(SPECIAL_TEXT_IDS)
    for _, _, _, kw in CASES:
        for s in [build_assistant_text(kw["text"])] + \
                 ([build_instruct_text(kw["instruct"])] if kw.get("instruct") else []) + \
                 ([build_ref_text(kw["ref_text"])] if kw.get("ref_text") else []):
            used.update(tok(s)["input_ids"])

    # ---- speech tokenizer (one tiny model, copied into every model dir) ---------------
    torch.manual_seed(SEED + 1)
    st_cfg = tiny_speech_tokenizer_config()
    st = Qwen3TTSTokenizerV2Model(st_cfg).float().eval()
    init_tiny_params(st, SEED + 2, torch, kind="codec")
    st_work = os.path.join(work, "speech_tokenizer")
    st.save_pretrained(st_work)
    write_json(os.path.join(st_work, "preprocessor_config.json"), SPEECH_PREPROCESSOR)
    manifest_models = {}

    # ---- main models ------------------------------------------------------------------
    for i, (mname, spec) in enumerate(TINY_MODELS.items()):
        torch.manual_seed(SEED + 10 + i)
        cfg = tiny_tts_config(mname, spec)
        m = Qwen3TTSForConditionalGeneration(cfg).float().eval()
        init_tiny_params(m, SEED + 20 + i, torch, used_text_ids=used, kind="tts")
        m = m.to(torch.bfloat16)
        mw = os.path.join(work, mname)
        m.save_pretrained(mw)
        fix_saved_config(mw, spec["tts_model_type"] == "base")
        write_json(os.path.join(mw, "generation_config.json"), GENERATION_CONFIG)
        shutil.copytree(st_work, os.path.join(mw, "speech_tokenizer"))
        for f in ("vocab.json", "merges.txt", "tokenizer_config.json"):
            shutil.copy(os.path.join(tok_dir, f), os.path.join(mw, f))
        # committed copy
        md = os.path.join(out, "models", mname)
        os.makedirs(os.path.join(md, "speech_tokenizer"))
        for f in ("config.json", "generation_config.json"):
            shutil.copy(os.path.join(mw, f), os.path.join(md, f))
        shutil.copy(os.path.join(mw, "model.safetensors"), os.path.join(md, "model.safetensors"))
        zst(os.path.join(md, "model.safetensors"))
        for f in ("config.json", "preprocessor_config.json"):
            shutil.copy(os.path.join(st_work, f), os.path.join(md, "speech_tokenizer", f))
        shutil.copy(os.path.join(st_work, "model.safetensors"),
                    os.path.join(md, "speech_tokenizer", "model.safetensors"))
        zst(os.path.join(md, "speech_tokenizer", "model.safetensors"))
        tc = cfg.talker_config
        manifest_models[mname] = {
            "tts_model_type": spec["tts_model_type"], "tts_model_size": spec["tts_model_size"],
            "talker": {k: getattr(tc, k) for k in ("hidden_size", "intermediate_size",
                       "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                       "head_dim", "text_hidden_size", "vocab_size", "text_vocab_size",
                       "rope_theta")},
            "code_predictor": {k: getattr(tc.code_predictor_config, k) for k in (
                "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "vocab_size", "rope_theta")},
            "small_to_mtp_projection": not isinstance(
                m.talker.code_predictor.small_to_mtp_projection, torch.nn.Identity),
            "speaker_encoder": m.speaker_encoder is not None,
            "speakers": sorted(tc.spk_id.keys()),
            "n_params": count_params(m),
            "weights_dtype": "bfloat16",
            "text_embedding_nonzero_rows": sorted(used),
            "codec_head_eos_row_scaled": 0.5,
        }
        del m

    sd = st_cfg.decoder_config
    manifest_models["speech_tokenizer"] = {
        "decoder": {k: getattr(sd, k) for k in ("codebook_size", "codebook_dim", "latent_dim",
                    "hidden_size", "intermediate_size", "num_hidden_layers",
                    "num_attention_heads", "num_key_value_heads", "head_dim", "sliding_window",
                    "upsample_rates", "upsampling_ratios", "decoder_dim", "num_quantizers")},
        "encoder": "tiny MimiConfig (see config.json)",
        "n_params_decoder": count_params(st.decoder), "n_params_encoder": count_params(st.encoder),
        "weights_dtype": "float32",
    }

    # ---- load the models through the official wrapper, in fp32 ------------------------
    def load(mname):
        return Qwen3TTSModel.from_pretrained(os.path.join(work, mname), dtype=torch.float32,
                                             attn_implementation="eager")

    # ---- speaker fixture (official mel + speaker encoder of the base model) -----------
    base = load("base")
    sr = 24000
    n = 2 * sr
    t = np.arange(n) / sr
    f0 = 140.0 + 20.0 * np.sin(2 * np.pi * 3.0 * t)
    phase = 2 * np.pi * np.cumsum(f0) / sr
    wav = sum((0.3 / k) * np.sin(k * phase + rng.uniform(0, 2 * np.pi)) for k in range(1, 9))
    wav = wav * (0.6 + 0.4 * np.sin(2 * np.pi * 1.5 * t) ** 2) + 0.01 * rng.randn(n)
    wav = (0.5 * wav / np.max(np.abs(wav))).astype(np.float32)
    spk_index = {}
    spk_dir = os.path.join(out, "speaker")
    save_npy(spk_dir, "wav", wav, spk_index)
    mel = mel_spectrogram(torch.from_numpy(wav).unsqueeze(0), n_fft=1024, num_mels=128,
                          sampling_rate=24000, hop_size=256, win_size=1024, fmin=0,
                          fmax=12000).transpose(1, 2)[0]
    save_npy(spk_dir, "mel", mel.numpy().astype(np.float32), spk_index)
    xvec = base.model.extract_speaker_embedding(audio=wav, sr=24000)
    save_npy(spk_dir, "xvector", xvec.float().numpy(), spk_index)
    try:
        enc = base.model.speech_tokenizer.encode(wav, sr=24000)
        save_npy(spk_dir, "codes", enc.audio_codes[0].cpu().numpy().astype(np.int64), spk_index)
        spk_meta_codes = "codes.npy: Qwen3TTSTokenizer.encode(wav, sr=24000) with the tiny Mimi encoder (official path)"
    except Exception as e:  # pragma: no cover
        spk_meta_codes = f"encoder failed: {e!r}"
    write_json(os.path.join(spk_dir, "meta.json"), {
        "sample_rate": 24000, "files": spk_index, "model": "base",
        "mel": "qwen_tts.core.models.modeling_qwen3_tts.mel_spectrogram(n_fft=1024, num_mels=128, "
               "sampling_rate=24000, hop_size=256, win_size=1024, fmin=0, fmax=12000), "
               "transposed to [frames, 128] exactly as fed to the speaker encoder",
        "xvector": "Qwen3TTSForConditionalGeneration.extract_speaker_embedding(wav, 24000), fp32",
        "codes": spk_meta_codes,
    })

    # ---- cases --------------------------------------------------------------------------
    loaded = {"base": base}
    case_names = []
    for cname, mname, mode, kw in CASES:
        if mname not in loaded:
            loaded[mname] = load(mname)
        w = loaded[mname]
        model = w.model
        talker = model.talker
        rec = {"prefill_embeds": None, "trailing": None, "logits": [], "hidden": [],
               "step_embeds": [], "cp_logits": [], "cp_in": [], "gen_args": None,
               "gen_out": None, "talker_seq": None}

        def talker_pre(mod, args, kwargs):
            ie = kwargs.get("inputs_embeds")
            if ie is not None and ie.shape[1] > 1:
                rec["prefill_embeds"] = ie[0].detach().clone()
                rec["trailing"] = kwargs["trailing_text_hidden"][0].detach().clone()
                rec["attention_mask"] = kwargs.get("attention_mask")
            return None

        def talker_post(mod, args, kwargs, output):
            rec["logits"].append(output.logits[0, -1].detach().clone())
            rec["hidden"].append(torch.stack([h[0] for h in output.hidden_states[0]]).clone())
            return None

        def talker_model_pre(mod, args, kwargs):
            ie = kwargs.get("inputs_embeds")
            if ie is not None and ie.shape[1] == 1:
                rec["step_embeds"].append(ie[0, 0].detach().clone())
            return None

        def cp_pre(mod, args, kwargs):
            ie = kwargs.get("inputs_embeds")
            if ie is not None and ie.shape[1] > 1:
                rec["cp_in"].append(ie[0].detach().clone())
            return None

        def cp_post(mod, args, kwargs, output):
            rec["cp_logits"].append(output.logits[0, -1].detach().clone())
            return None

        hooks = [talker.register_forward_pre_hook(talker_pre, with_kwargs=True),
                 talker.register_forward_hook(talker_post, with_kwargs=True),
                 talker.model.register_forward_pre_hook(talker_model_pre, with_kwargs=True),
                 talker.code_predictor.register_forward_pre_hook(cp_pre, with_kwargs=True),
                 talker.code_predictor.register_forward_hook(cp_post, with_kwargs=True)]
        orig_generate = model.generate
        orig_talker_generate = talker.generate

        def gen_wrap(*a, **k):
            rec["gen_args"] = k
            r = orig_generate(*a, **k)
            rec["gen_out"] = r
            return r

        def talker_gen_wrap(*a, **k):
            rec["talker_kwargs"] = {kk: vv for kk, vv in k.items()
                                    if not isinstance(vv, torch.Tensor)}
            r = orig_talker_generate(*a, **k)
            rec["talker_seq"] = r.sequences[0].clone()
            return r

        model.generate = gen_wrap
        talker.generate = talker_gen_wrap
        common = dict(do_sample=False, subtalker_dosample=False, max_new_tokens=MAX_NEW_TOKENS)
        xvector_fed = None
        ref_codes = None
        try:
            if mode == "custom_voice":
                wavs, fs = w.generate_custom_voice(
                    text=kw["text"], speaker=kw["speaker"], language=kw["language"],
                    instruct=kw["instruct"], non_streaming_mode=kw["non_streaming_mode"], **common)
            elif mode == "voice_design":
                wavs, fs = w.generate_voice_design(
                    text=kw["text"], instruct=kw["instruct"], language=kw["language"],
                    non_streaming_mode=kw["non_streaming_mode"], **common)
            else:
                xvector_fed = xvec.clone()
                if mode == "voice_clone_icl":
                    ref_codes = torch.from_numpy(
                        rng.randint(0, 2048, size=(kw["t_ref"], 16)).astype(np.int64))
                item = VoiceClonePromptItem(
                    ref_code=ref_codes, ref_spk_embedding=xvector_fed,
                    x_vector_only_mode=(mode == "voice_clone_xvector"),
                    icl_mode=(mode == "voice_clone_icl"), ref_text=kw.get("ref_text"))
                wavs, fs = w.generate_voice_clone(
                    text=kw["text"], language=kw["language"], voice_clone_prompt=[item],
                    non_streaming_mode=kw["non_streaming_mode"], **common)
        finally:
            for h in hooks:
                h.remove()
            model.generate = orig_generate
            talker.generate = orig_talker_generate

        codes = rec["gen_out"][0][0].cpu().numpy().astype(np.int64)
        F = codes.shape[0]
        seq = rec["talker_seq"].cpu().numpy()
        eos = int(CODEC_IDS["codec_eos_token_id"])
        eos_reached = bool(len(seq) > 0 and seq[-1] == eos)
        assert np.array_equal(seq[:F], codes[:, 0])
        d = os.path.join(out, "cases", cname)
        os.makedirs(d)
        idx = {}
        ga = rec["gen_args"]
        save_npy(d, "text_ids", ga["input_ids"][0][0].cpu().numpy().astype(np.int64), idx)
        if ga.get("instruct_ids") and ga["instruct_ids"][0] is not None:
            save_npy(d, "instruct_ids", ga["instruct_ids"][0][0].cpu().numpy().astype(np.int64), idx)
        if ga.get("ref_ids") and ga["ref_ids"][0] is not None:
            save_npy(d, "ref_ids", ga["ref_ids"][0][0].cpu().numpy().astype(np.int64), idx)
        save_npy(d, "prompt_embeds", rec["prefill_embeds"].numpy(), idx)
        save_npy(d, "trailing_text", rec["trailing"].numpy(), idx)
        save_npy(d, "prefill_hidden", rec["hidden"][0].numpy(), idx)
        save_npy(d, "prefill_logits", rec["logits"][0].numpy(), idx)
        save_npy(d, "codes", codes, idx)
        save_npy(d, "step_logits", torch.stack(rec["logits"]).numpy(), idx)
        save_npy(d, "step_hidden", torch.stack(rec["hidden"][1:]).numpy()[:, :, 0, :]
                 if rec["hidden"][1].dim() == 3 else torch.stack(rec["hidden"][1:]).numpy(), idx)
        save_npy(d, "step_embeds", torch.stack(rec["step_embeds"]).numpy(), idx)
        cpl = torch.stack(rec["cp_logits"]).view(-1, 15, 2048)[:CP_FRAMES]
        save_npy(d, "cp_logits", cpl.numpy(), idx)
        save_npy(d, "cp_prefill_in", torch.stack(rec["cp_in"][:CP_FRAMES]).numpy(), idx)
        if xvector_fed is not None:
            save_npy(d, "xvector", xvector_fed.float().numpy(), idx)
        if ref_codes is not None:
            save_npy(d, "ref_codes", ref_codes.numpy(), idx)
        if cname in WAV_CASES:
            save_npy(d, "wav", np.asarray(wavs[0], dtype=np.float32), idx)
        lang = kw["language"].lower()
        meta = {
            "model": mname, "mode": mode, "text": kw["text"], "speaker": kw.get("speaker"),
            "instruct": kw.get("instruct"), "language": kw["language"],
            "non_streaming_mode": kw["non_streaming_mode"], "ref_text": kw.get("ref_text"),
            "n_frames": int(F), "eos_reached": eos_reached,
            "final_sampled_c0": int(seq[-1]),
            "sampled_c0_sequence_len": int(len(seq)),
            "max_new_tokens": MAX_NEW_TOKENS,
            "prefill_len": int(rec["prefill_embeds"].shape[0]),
            "trailing_len": int(rec["trailing"].shape[0]),
            "t_ref": int(ref_codes.shape[0]) if ref_codes is not None else None,
            "api_call": {"custom_voice": "Qwen3TTSModel.generate_custom_voice",
                         "voice_design": "Qwen3TTSModel.generate_voice_design"}.get(
                mode, "Qwen3TTSModel.generate_voice_clone(voice_clone_prompt=[VoiceClonePromptItem])"),
            "generate_kwargs": {"do_sample": False, "subtalker_dosample": False,
                                "max_new_tokens": MAX_NEW_TOKENS, "repetition_penalty": 1.05,
                                "top_k": 50, "top_p": 1.0, "temperature": 0.9},
            "talker_generate_kwargs": {k: v for k, v in rec["talker_kwargs"].items()
                                       if k != "suppress_tokens"},
            "suppress_tokens": "2048..3071 except 2150",
            "cp_frames": CP_FRAMES,
            "files": idx,
        }
        if mode == "custom_voice":
            meta["speaker_id"] = SPK_ID[kw["speaker"].lower()]
        if lang == "auto":
            meta["language_id"] = None
        else:
            meta["language_id"] = CODEC_LANGUAGE_ID[lang]
        if kw.get("speaker") and lang in ("auto", "chinese") and SPK_IS_DIALECT.get(kw["speaker"].lower()):
            meta["language_id"] = CODEC_LANGUAGE_ID[SPK_IS_DIALECT[kw["speaker"].lower()]]
            meta["dialect_override"] = SPK_IS_DIALECT[kw["speaker"].lower()]
        write_json(os.path.join(d, "meta.json"), meta)
        case_names.append(cname)
        print(f"case {cname}: P={meta['prefill_len']} Q={meta['trailing_len']} F={F} "
              f"eos={eos_reached} last={int(seq[-1])}", flush=True)

    # ---- codec fixture --------------------------------------------------------------
    stm = loaded["base"].model.speech_tokenizer.model   # fp32 Qwen3TTSTokenizerV2Model
    dec = stm.decoder
    cdir = os.path.join(out, "codec")
    cidx = {}
    codes = rng.randint(0, 2048, size=(CODEC_T, 16)).astype(np.int64)
    save_npy(cdir, "codes", codes, cidx)
    ct = torch.from_numpy(codes).t().unsqueeze(0)            # [1, 16, T]
    stages = {}
    hooks = [
        dec.pre_conv.register_forward_pre_hook(
            lambda m, a: stages.__setitem__("rvq", a[0][0].clone())),
        dec.pre_conv.register_forward_hook(
            lambda m, a, o: stages.__setitem__("pre_conv", o[0].clone())),
        dec.pre_transformer.register_forward_hook(
            lambda m, a, k, o: stages.__setitem__("pre_transformer",
                                                  o.last_hidden_state[0].t().clone()),
            with_kwargs=True),
        dec.upsample.register_forward_hook(lambda m, a, o: None),
    ]
    for bi, blk in enumerate(dec.upsample):
        hooks.append(blk[-1].register_forward_hook(
            lambda m, a, o, bi=bi: stages.__setitem__(f"upsample{bi}", o[0].clone())))
    for bi, blk in enumerate(dec.decoder):
        hooks.append(blk.register_forward_hook(
            lambda m, a, o, bi=bi: stages.__setitem__(f"decoder{bi}", o[0].clone())))
    with torch.no_grad():
        wav_full = dec(ct)[0, 0]
    for h in hooks:
        h.remove()
    with torch.no_grad():
        wav_chunked = dec.chunked_decode(ct, **CODEC_CHUNK)[0, 0]
        wav_api = stm.decode(torch.from_numpy(codes).unsqueeze(0)).audio_values[0]
    save_npy(cdir, "wav_full", wav_full.numpy(), cidx)
    save_npy(cdir, "wav_chunked", wav_chunked.numpy(), cidx)
    stage_desc = {
        "stage_rvq": "SplitResidualVectorQuantizer.decode output [codebook_dim, T] (input of pre_conv)",
        "stage_pre_conv": "pre_conv output [latent_dim, T]",
        "stage_pre_transformer": "pre_transformer last_hidden_state (after final norm + output_proj), transposed to [latent_dim, T]",
        "stage_upsample0": "after upsample stage 0 (TransConv k2 s2 + ConvNeXt) [latent_dim, 2T]",
        "stage_upsample1": "after upsample stage 1 [latent_dim, 4T]",
        "stage_decoder0": "decoder[0] causal conv k7 latent->decoder_dim [decoder_dim, 4T]",
        "stage_decoder1": "decoder[1] DecoderBlock rate 8 [decoder_dim/2, 32T]",
        "stage_decoder2": "decoder[2] DecoderBlock rate 5 [decoder_dim/4, 160T]",
    }
    for k in ("rvq", "pre_conv", "pre_transformer", "upsample0", "upsample1", "decoder0",
              "decoder1", "decoder2"):
        save_npy(cdir, "stage_" + k, stages[k].numpy(), cidx)
    write_json(os.path.join(cdir, "meta.json"), {
        "T": CODEC_T, "samples_per_frame": 1920, "sample_rate": 24000,
        "sliding_window": int(sd.sliding_window),
        "chunk_size": CODEC_CHUNK["chunk_size"], "left_context": CODEC_CHUNK["left_context_size"],
        "wav_full": "Qwen3TTSTokenizerV2Decoder.forward(codes.T[None]) -- one call, includes the final clamp to [-1,1]",
        "wav_chunked": f"Qwen3TTSTokenizerV2Decoder.chunked_decode(codes.T[None], chunk_size={CODEC_CHUNK['chunk_size']}, left_context_size={CODEC_CHUNK['left_context_size']})",
        "wav_api_equals_wav_full": bool(torch.equal(wav_api, wav_full)),
        "wav_chunked_max_abs_diff_vs_full": float((wav_chunked - wav_full).abs().max()),
        "stages": stage_desc, "files": cidx,
        "wav_full_stats": {"std": float(wav_full.std()), "frac_clipped": float((wav_full.abs() >= 1).float().mean())},
    })

    versions = {"qwen_tts": version("qwen-tts"), "transformers": transformers.__version__,
                "torch": torch.__version__, "torchaudio": version("torchaudio"),
                "accelerate": version("accelerate"), "python": platform.python_version(),
                "numpy": np.__version__, "librosa": version("librosa"),
                "safetensors": version("safetensors")}
    write_json(os.path.join(out, "manifest.json"), {
        "generator": "scripts/make_fixtures.py", "versions": versions, "seed": SEED,
        "models": manifest_models, "cases": case_names,
        "codec": {"dir": "codec", "T": CODEC_T, **CODEC_CHUNK},
        "speaker": {"dir": "speaker", "seconds": 2.0, "sample_rate": 24000},
        "attn_implementation": "eager", "dtype": "float32 compute, bf16 stored weights",
    })
    shutil.rmtree(work, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures"))
    ap.add_argument("--tokenizer-dir",
                    default=os.path.join(os.path.dirname(ROOT), "shared", "data", "qwen2-tokenizer"))
    ap.add_argument("--full-size", metavar="OUT_DIR")
    ap.add_argument("--sizes", default="0.6B,1.7B")
    a = ap.parse_args()
    if a.full_size:
        full_size(a.full_size, [s.strip() for s in a.sizes.split(",") if s.strip()])
    else:
        if not os.path.exists(os.path.join(a.tokenizer_dir, "vocab.json")):
            alt = "/work/shared/data/qwen2-tokenizer"
            if os.path.exists(os.path.join(alt, "vocab.json")):
                a.tokenizer_dir = alt
        main_fixtures(a.out, a.tokenizer_dir)


if __name__ == "__main__":
    main()
