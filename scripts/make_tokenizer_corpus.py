#!/usr/bin/env python3
"""Generate tests/data/tokenizer_corpus.jsonl: texts and the ids Hugging Face's
Qwen2TokenizerFast gives them (add_special_tokens=False), the reference that
tests/test_tokenizer.c compares src/tokenizer.c against line by line.

Two references per line: "ids" from plain Qwen2TokenizerFast, and "ids_fix" (written only
where it differs) from the tokenizer as the official qwen_tts processor gets it:
from_pretrained(fix_mistral_regex=True) on a folder whose config.json is a Qwen3-TTS one
(model_type qwen3_tts, transformers_version 4.57.3). transformers 4.57.3 then swaps the
pre-tokenizer pattern (tokenization_utils_base.py, _patch_mistral_regex).

usage: /work/pyref/venv/bin/python scripts/make_tokenizer_corpus.py \
           [--tokenizer ../shared/data/qwen2-tokenizer] [--out tests/data/tokenizer_corpus.jsonl]
The corpus is seeded and deterministic; rerunning it rewrites the same file."""
import argparse
import json
import os
import random
import unicodedata

HERE = os.path.dirname(os.path.abspath(__file__))

SAMPLES = {
    "en": ["The quick brown fox jumps over the lazy dog.", "I'm sure you'll love it; we've tried, haven't we?",
           "Mr. Smith paid $1,234.56 on 2024-03-15 at 10:30 p.m.", "Dr. J. R. R. Tolkien wrote e.g. The Hobbit, etc.",
           "\"Hello,\" she said -- 'it's fine...' (really!)", "Visit https://example.com/path?q=1&r=2#frag or mail a.b@c.org",
           "HE'S HERE. THEY'LL COME. I'D GO. WE'RE OK. YOU'VE WON. I'M IN. DON'T!", "He's", "she'S", "It'LL", "x'Re'vE'm'D't's"],
    "de": ["Größenwahn über Straßen: Äpfel, Öl und Übermut.", "Donaudampfschifffahrtsgesellschaftskapitänsmütze!"],
    "fr": ["L'été où j'ai vu l'hôpital, c'était « magnifique » — n'est-ce pas ?", "Ça coûte 12,50 € aujourd'hui."],
    "es": ["¿Dónde está el niño? ¡Mañana será otro día!", "El pingüino comió 3½ cigüeñas."],
    "it": ["Perché l'ho fatto? Così è la vita, però.", "Un caffè, per favore."],
    "pt": ["Não há coração sem emoção; ação e reação.", "Você já foi à São Paulo?"],
    "ru": ["Съешь же ещё этих мягких французских булок, да выпей чаю.", "Москва — столица России. Ёлка!"],
    "zh": ["今天天气很好，我们去公园散步吧。", "人工智能正在改变世界！你觉得呢？", "他说：“我明天再来。”然后走了……",
           "一九四九年十月一日，中华人民共和国成立。", "数字123和English混合的句子。"],
    "ja": ["吾輩は猫である。名前はまだ無い。", "東京タワーは３３３メートルです！", "カタカナとひらがなとKanjiの混在テキスト。"],
    "ko": ["안녕하세요, 만나서 반갑습니다.", "대한민국의 수도는 서울입니다! 정말?"],
    "ar": ["مرحبا بالعالم، كيف حالك اليوم؟", "اللغة العربية جميلة جداً."],
    "hi": ["नमस्ते दुनिया, आप कैसे हैं?", "भारत एक विशाल देश है।"],
    "th": ["สวัสดีครับ ยินดีที่ได้รู้จัก", "ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ"],
}
EMOJI = ["😀", "👍🏽", "👨‍👩‍👧‍👦", "🏳️‍🌈", "❤️", "🇯🇵", "🧑🏿‍🚀", "✈︎", "👩‍💻", "🤖"]
CURRENCY = ["$", "€", "£", "¥", "₹", "₩", "₽", "¢", "₿", "USD"]
PUNCT = list(".,;:!?…—–-'\"()[]{}<>«»“”‘’。！？、，；：（）「」『』【】#@%^&*_+=/\\|~`")
WS = [" ", "  ", "\t", "\n", "\r\n", "\n\n", " \n", "\u00a0", "\u3000", "\u2009", "\r", "\x0b", "\x0c", "\u2028", "\x1c", "\x1f", "\x85", "\u180e", "\u200b", "\u205f"]
SPECIAL_LIKE = ["<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start", "im_start|>", "<|IM_START|>",
                "<| im_start |>", "<tts_pad>", "<tts_pad", "tts_pad>", "<tts_text_bos>", "<|im_end|>\n",
                "<|im_start|>assistant\n", "<<|im_end|>>", "<|im_start|><|im_end|>", "<|endoftext|x"]
COMBINING = ["e\u0301", "a\u0308", "n\u0303", "o\u0302\u0323", "A\u030a", "\u1100\u1161\u11a8", "C\u0327",
             "\u0915\u093c", "i\u0307\u0301", "Å", "\u212b", "\ufb01", "\u2126"]
FULLWIDTH = ["ＡＢＣ", "１２３", "ｈｅｌｌｏ", "！？", "（テスト）", "＄１００", "ﾊﾝｶｸ"]


def rand_word(rng):
    kind = rng.random()
    if kind < 0.35:
        lang = rng.choice(list(SAMPLES))
        s = rng.choice(SAMPLES[lang])
        if rng.random() < 0.5:
            a = rng.randrange(len(s))
            s = s[a:a + rng.randint(1, 30)]
        return s
    if kind < 0.45:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 12)))
    if kind < 0.52:
        return rng.choice(CURRENCY) + str(rng.randint(0, 99999)) + rng.choice(["", ".99", ",00", "k"])
    if kind < 0.60:
        return "".join(rng.choice(PUNCT) for _ in range(rng.randint(1, 6)))
    if kind < 0.68:
        return "".join(rng.choice(WS) for _ in range(rng.randint(1, 5)))
    if kind < 0.74:
        return rng.choice(EMOJI)
    if kind < 0.80:
        return rng.choice(SPECIAL_LIKE)
    if kind < 0.86:
        return rng.choice(COMBINING)
    if kind < 0.90:
        return rng.choice(FULLWIDTH)
    if kind < 0.95:
        c = rng.choice(["'s", "'t", "'re", "'ve", "'m", "'ll", "'d"])
        c = "".join(ch.upper() if rng.random() < 0.5 else ch for ch in c)
        return rng.choice(["he", "IT", "we", "They", "", " ", "1", "é"]) + c
    # random code points from assorted blocks
    blocks = [(0x20, 0x7e), (0xa0, 0x17f), (0x370, 0x3ff), (0x400, 0x4ff), (0x590, 0x5ff), (0x600, 0x6ff),
              (0x900, 0x97f), (0xe00, 0xe7f), (0x3040, 0x30ff), (0x4e00, 0x9fff), (0xac00, 0xd7a3),
              (0x2000, 0x206f), (0x1f300, 0x1faff), (0x1d400, 0x1d7ff), (0x2070, 0x209f), (0x2150, 0x218f)]
    lo, hi = rng.choice(blocks)
    out = []
    for _ in range(rng.randint(1, 8)):
        cp = rng.randint(lo, hi)
        if 0xd800 <= cp <= 0xdfff:
            continue
        out.append(chr(cp))
    return "".join(out)


def texts(rng):
    out = []
    for lang, ss in SAMPLES.items():
        out.extend(ss)
    out.extend(EMOJI + SPECIAL_LIKE + COMBINING + FULLWIDTH + CURRENCY)
    out.extend(["", " ", "  ", "\n", "\r\n", "\r\n\r\n", " \r\n ", "a\r\nb", "   a", "a   ", "a   b", "\t\tx",
                "...", "!!!???", "--", "a.b.c", "3.14159", "1,000,000", "0x1F", "١٢٣", "²³", "Ⅻ", "½",
                "'s", "'S", "''s", " 's", "n't", "it's'", "'", "''", "a'", "'ll've", "'ſ", "'\u212a", "it'ſ", "can't won't shan't",
                "hello\n\n\nworld", "x \n y", "x  \n\n  y", "end.   ", "\n  \n", "a\u200db", "\ufeffbom",
                "a" * 300, "ab" * 400, "😀" * 50, "中" * 500, "1" * 100, " " * 100, "\n" * 40,
                "antidisestablishmentarianism" * 10, "HelloWorld", "camelCaseWordsHere", "HTTPServerError",
                "iPhone", "McDonald's", "ABCdef", "aBC", "ǅungla", "ʰello", "a/b/c", "x!/\n/y", "e\u0301\u0301x",
                "\u0301abc", " \u0301", "क\u093eम", "'\u0301s", "https://" + "x" * 200 + ".com"])
    for _ in range(1000):
        n = rng.randint(1, 12)
        out.append("".join(rand_word(rng) + (rng.choice(WS) if rng.random() < 0.6 else "") for _ in range(n)))
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=os.path.join(HERE, "..", "..", "..", "shared", "data", "qwen2-tokenizer"))
    ap.add_argument("--out", default=os.path.join(HERE, "..", "tests", "data", "tokenizer_corpus.jsonl"))
    a = ap.parse_args()
    import shutil
    import tempfile
    from transformers import Qwen2TokenizerFast
    tok = Qwen2TokenizerFast.from_pretrained(a.tokenizer)
    tmp = tempfile.mkdtemp()
    for f in ("vocab.json", "merges.txt", "tokenizer_config.json"):
        shutil.copy(os.path.join(a.tokenizer, f), tmp)
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump({"model_type": "qwen3_tts", "transformers_version": "4.57.3"}, f)
    tok2 = Qwen2TokenizerFast.from_pretrained(tmp, fix_mistral_regex=True)
    shutil.rmtree(tmp)
    assert "Lu" in str(tok2.backend_tokenizer.pre_tokenizer), "fix_mistral_regex did not patch the pattern"
    rng = random.Random(20240611)
    os.makedirs(os.path.dirname(a.out), exist_ok=True)
    n = diff = 0
    with open(a.out, "w", encoding="utf-8") as f:
        for t in texts(rng):
            ids = tok.encode(t, add_special_tokens=False)
            rec = {"text": t, "ids": ids}
            ids2 = tok2.encode(t, add_special_tokens=False)
            if ids2 != ids:
                diff += 1
                rec["ids_fix"] = ids2
            nfc = unicodedata.normalize("NFC", t)
            if nfc != t:  # decode(encode(text)) must give this back
                rec["nfc"] = nfc
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    print(f"{n} lines -> {a.out}; the official (fix_mistral_regex) tokenizer differs on {diff} lines")


if __name__ == "__main__":
    main()
