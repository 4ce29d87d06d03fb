#!/usr/bin/env python3
"""Writes tests/data/pipeline/clip_tokens.json: CLIP token ids from transformers.

The reference is transformers' CLIPTokenizer as most Stable Diffusion users have run it: the
Python ("slow") tokenizer of transformers 4.x with ftfy installed, so that text is cleaned by
ftfy.fix_text. transformers 5 dropped that tokenizer (its CLIPTokenizer is the Rust one, which
skips ftfy); its ids are recorded too, as "ids_fast" where they differ, from CLIPTokenizerFast,
which v5's CLIPTokenizer equals. Run it in an environment with transformers 4.x:

    python3 -m venv /tmp/tf4 && /tmp/tf4/bin/pip install 'transformers==4.57.1' ftfy regex
    /tmp/tf4/bin/python tools/reference/make_tokenizer_fixtures.py

Both tokenizers are built from vocab.json and merges.txt derived from the vocabulary Ebb ships
(assets/vocab/clip/bpe_simple_vocab_16e6.txt.gz), the way OpenAI's CLIP builds its encoder:
256 byte symbols, the same with "</w>", the first 48894 merges, then the two special tokens.
"""
import gzip
import random
import json
import pathlib
import tempfile

import transformers
from transformers import CLIPTokenizer, CLIPTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parents[2]
VOCAB_GZ = ROOT / "assets/vocab/clip/bpe_simple_vocab_16e6.txt.gz"
OUT = ROOT / "tests/data/pipeline/clip_tokens.json"
MERGE_COUNT = 49152 - 256 - 2

LONG_TAGS = (
    "masterpiece, best quality, ultra detailed, 8k wallpaper, a beautiful woman standing in a "
    "field of sunflowers at golden hour, flowing white dress, wind in her hair, soft rim light, "
    "bokeh, shallow depth of field, 85mm lens, f/1.4, film grain, kodak portra 400, warm tones, "
    "gentle smile, looking at viewer, freckles, detailed eyes, long eyelashes, light makeup, "
    "straw hat with a red ribbon, holding a wicker basket, butterflies, clouds, blue sky, "
    "distant mountains, rolling hills, impressionist painting style, by claude monet and "
    "john singer sargent, trending on artstation"
)

PROMPTS = [
    "a photograph of an astronaut riding a horse",
    "",
    "   ",
    "Hello, World!!! 1234 3.14 $100 50% #1",
    "don't won't it's I'm we're they've you'll he'd",
    "DON'T SHOUT, It'S 'S ''s 's's rock'n'roll",
    "café naïve Zoë façade crème brûlée",
    "cafe\u0301 decomposed e\u0301",
    "東京タワー 夜景 美しい",
    "한국어 텍스트",
    "हिन्दी पाठ and العربية and Привет мир",
    "🎨🖌️ art 👩\u200d🚀 astronaut 🇯🇵 flag!!",
    "multiple   spaces\n\nnew lines\ttabs\r\nwindows\rmac",
    "a\u00a0nbsp\u2009thin\u3000ideographic\u2028line sep",
    "&amp; &lt;3 &quot;quoted&quot; &#39;single&#39; &#x1F600; &#233;",
    "a < b &amp; c",
    "&amp;amp; double",
    "first line &amp;\nsecond < line &amp;\nthird &amp;",
    "&nbsp;&AMP;&gt;&unknownentity; &#xZZ; &#0; &#128;",
    "\u201ccurly quotes\u201d and \u2018single\u2019 don\u2019t \u02bcx",
    "\ufb01ne \ufb02ower \u0133 \u0149",
    "\uff26\uff35\uff2c\uff2c\uff37\uff29\uff24\uff34\uff28\u3000\uff54\uff45\uff58\uff54\uff11\uff12\uff13 \uff76\uff80\uff76\uff85",
    "ΟΔΥΣΣΕΥΣ ΣΟΦΟΣ",
    "İstanbul straße STRASSE",
    "<|startoftext|>a<|endoftext|>b <|ENDOFTEXT|> < |endoftext|>",
    "masterpiece, best quality, (detailed:1.2), [blurry], \\(escaped\\)",
    "control\x01chars\x7f and \x1b[31mansi\x1b[0m codes",
    "zero\u200bwidth joiner\u200d and bom\ufeff",
    "\u0085next line and c1 \x80\x9f\x81",
    "€100 £50 ¥1000 ₹ x²³ ½ ⅓ ① Ⅻ",
    "hello-world foo_bar foo/bar foo.bar e-mail@example.com https://example.com/path?q=1&x=2",
    "8k uhd, 4k, 16:9, 1920x1080, 0.5, -3",
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "!!!!!!!!??????...,,,,;;;;",
    LONG_TAGS,
    " ".join([LONG_TAGS] * 3),
    "&AMP; &Amp; &amp &hellip;&HELLIP;&mdash;&ndash;&lsquo;&rsquo;&ldquo;&rdquo;&laquo;&raquo;",
    "&times;&deg;&copy;&COPY;&reg;&trade;&middot;&bull;&apos;&APOS;&NBSP;",
    "&#x; &#12ab; &#0000000000000000000065; &#x0000000000000000000041; &#1114112; &#xD800;",
    "&#13;&#11;&#65534;&#xFDD0;&#159;&#x9D; a&amp;<b",
    "x\n<\n&amp; sticky",
    "\x1b[ incomplete \x1b[12;3 digits \x1b[٣m arabic digit",
    "it'ſ long s, i'M, x'RE",
    "ｶﾞﾊﾟ halfwidth dakuten",
    "ΣΑ Σ. aΣ ΑΣΑ Σ",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 Ⓐ ١٢٣",
    "ภาษาไทย 가 👍🏽",
    "soft­hyphen  separators",
    "x<|startoftext|>y<|startoftext|",
]


def random_prompts(count: int) -> list:
    """Random mixes of what prompts contain, to cover combinations nobody thought of."""
    pool = (
        list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        + list(" ,.;:!?'\"()[]{}<>-_/\\|@#$%^&*+=~`")
        + [" ", "  ", "\n", "\t", "\u00a0", "\u3000", "\r\n"]
        + list("éèêëàâäçîïôöùûüñßøåæœÉÀÇÑ")
        + list("日本語東京の風景中文한국어ひらがなカタカナ")
        + ["\U0001f600", "\U0001f3a8", "\u2764\ufe0f", "\U0001f469\u200d\U0001f680"]
        + ["\u2018", "\u2019", "\u201c", "\u201d", "\ufb01", "\uff21", "\uff11", "\u00bd"]
        + ["&amp;", "&lt;", "&gt;", "&quot;", "&#39;", "&#x263A;", "'s", "'t", "'re", "'ll"]
        + ["masterpiece", "best quality", "ultra-detailed", "1girl", "(", ")", ":1.2"]
    )
    rng = random.Random(20240611)
    return ["".join(rng.choice(pool) for _ in range(rng.randint(1, 40))) for _ in range(count)]


# Prompts whose padded 77-token windows are recorded as well (diffusers' tokenizer call).
WINDOWED = {0, 1, 3, 35}


def write_vocab_files(directory: pathlib.Path) -> None:
    lines = gzip.open(VOCAB_GZ, "rt", encoding="utf-8").read().split("\n")
    merges = [tuple(line.split()) for line in lines[1 : 1 + MERGE_COUNT]]
    byte_symbols = byte_to_symbol()
    symbols = [byte_symbols[b] for b in byte_order()]
    vocab = symbols + [s + "</w>" for s in symbols] + ["".join(m) for m in merges]
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    assert len(vocab) == 49408 and len(set(vocab)) == len(vocab)
    encoder = {token: index for index, token in enumerate(vocab)}
    (directory / "vocab.json").write_text(json.dumps(encoder, ensure_ascii=False))
    merge_lines = ["#version: 0.2"] + [" ".join(m) for m in merges]
    (directory / "merges.txt").write_text("\n".join(merge_lines) + "\n", encoding="utf-8")


PRINTABLE_BYTES = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAC + 1), *range(0xAE, 0xFF + 1)]


def byte_order() -> list:
    """Bytes in the order of the vocabulary: printable Latin-1 bytes first, then the rest."""
    return PRINTABLE_BYTES + [b for b in range(256) if b not in PRINTABLE_BYTES]


def byte_to_symbol() -> dict:
    """The printable bytes stand for themselves; the others, in byte order, for U+0100 on."""
    others = [b for b in range(256) if b not in PRINTABLE_BYTES]
    symbols = {b: chr(b) for b in PRINTABLE_BYTES}
    symbols.update({b: chr(256 + i) for i, b in enumerate(others)})
    return symbols


def main() -> None:
    major = int(transformers.__version__.split(".")[0])
    if major >= 5:
        raise SystemExit("needs transformers 4.x (its Python CLIPTokenizer runs ftfy); see the docstring")
    with tempfile.TemporaryDirectory() as tmp:
        directory = pathlib.Path(tmp)
        write_vocab_files(directory)
        files = dict(vocab_file=str(directory / "vocab.json"), merges_file=str(directory / "merges.txt"))
        slow = CLIPTokenizer(**files)
        # Padding with id 0 as OpenCLIP does. Not pad_token="!" as diffusers' SD 2.x / SDXL
        # tokenizer configs say: that also makes every "!" in a prompt a special token of id 0
        # (diffusers issue 4153), which OpenCLIP and A1111 do not do.
        slow_zero_pad = CLIPTokenizer(**files)
        slow_zero_pad.pad_token_id = 0
        fast = CLIPTokenizerFast(**files)
    if slow.fix_text is None:
        raise SystemExit("ftfy is not installed: CLIPTokenizer would not clean text the usual way")
    import ftfy

    cases = []
    for index, text in enumerate(PROMPTS + random_prompts(150)):
        case = {"text": text, "ids": slow(text, add_special_tokens=False).input_ids}
        fast_ids = fast(text, add_special_tokens=False).input_ids
        if fast_ids != case["ids"]:
            case["ids_fast"] = fast_ids
        if index in WINDOWED:
            window = dict(padding="max_length", max_length=77, truncation=True)
            case["window_pad_eos"] = slow(text, **window).input_ids
            case["window_pad_zero"] = slow_zero_pad(text, **window).input_ids
        cases.append(case)
    header = {"transformers": transformers.__version__, "ftfy": ftfy.__version__}
    lines = [json.dumps(case, ensure_ascii=False) for case in cases]  # one case a line
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(header)[:-1] + ', "cases": [\n' + ",\n".join(lines) + "\n]}\n",
                   encoding="utf-8")


if __name__ == "__main__":
    main()
