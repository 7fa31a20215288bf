"""Helpers for tiny, offline diffusers pipelines (tests, demos, benchmarks).

* Tokenizers are built locally with the ``tokenizers`` library (no hub, no sentencepiece):
  a byte-level BPE for CLIP / Qwen2 (and, through ``byte_bpe``, any byte-level BPE such as Mistral's),
  ``QWEN_CHAT_TEMPLATE`` for pipelines that encode prompts with ``apply_chat_template``, and a word-level
  Unigram for T5/UMT5.
* Built pipelines are saved under omni's cache dir (``$OMNI_CACHE_DIR`` or ``~/.cache/omni``), in
  ``models/<name>-<key>``, so repeated runs do not rebuild them; writes are atomic
  (temporary folder + rename), so an interrupted build never leaves a half folder behind.

Everything is deterministic under a seed: the same build gives bit-identical weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

CORPUS = [
    "a red circle on a blue background",
    "a green square on a white background",
    "a photo of a cat sitting on a chair",
    "an astronaut riding a horse on the moon",
    "a yellow triangle on a black background",
    "a purple and orange sunset over the sea",
    "a small dog running in a park",
    "a city street at night with lights",
    "a bowl of fruit on a wooden table",
]


def omni_cache_root() -> Path:
    """omni's cache dir: ``$OMNI_CACHE_DIR``, else ``$XDG_CACHE_HOME/omni`` or ``~/.cache/omni``."""
    root = os.environ.get("OMNI_CACHE_DIR")
    if root:
        return Path(root).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "omni"


def cache_root() -> Path:
    """Where built models are cached: ``<omni cache dir>/models``."""
    return omni_cache_root() / "models"


def cached_build(name: str, key: dict[str, Any], build: Callable[[], Any]) -> Path:
    """Return the folder of a saved pipeline, building and saving it (atomically) if missing.

    ``key`` identifies the configuration; a change of key gives a new folder.
    """
    digest = hashlib.sha256(json.dumps(key, sort_keys=True, default=str).encode()).hexdigest()[:12]
    target = cache_root() / f"{name}-{digest}"
    if (target / "model_index.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=target.parent))
    try:
        pipe = build()
        pipe.save_pretrained(tmp, safe_serialization=True)
        try:
            os.replace(tmp, target)
        except OSError:  # another process won the race
            if not (target / "model_index.json").is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target


def seeded(seed: int):
    import torch

    torch.manual_seed(seed)


def _bytes_to_unicode() -> dict[int, str]:
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def clip_tokenizer(corpus: Iterable[str] = CORPUS, vocab_size: int = 1000):
    """A CLIPTokenizer with a byte-level BPE trained on ``corpus`` (vocab.json + merges.txt)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import CLIPTokenizer

    alphabet = list(_bytes_to_unicode().values())
    tok = Tokenizer(models.BPE(end_of_word_suffix="</w>"))
    tok.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, initial_alphabet=alphabet, end_of_word_suffix="</w>", show_progress=False,
        special_tokens=[],
    )
    tok.train_from_iterator(list(corpus), trainer)
    model = json.loads(tok.to_str())["model"]
    vocab: dict[str, int] = {}
    for ch in alphabet:
        vocab.setdefault(ch, len(vocab))
    for ch in alphabet:
        vocab.setdefault(ch + "</w>", len(vocab))
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    for merge in merges:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    vocab.setdefault("<|startoftext|>", len(vocab))
    vocab.setdefault("<|endoftext|>", len(vocab))
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "vocab.json").write_text(json.dumps(vocab))
        Path(tmp, "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
        return CLIPTokenizer.from_pretrained(tmp, pad_token="<|endoftext|>", model_max_length=77)


def t5_tokenizer(corpus: Iterable[str] = CORPUS):
    """A T5TokenizerFast over a hand-built Unigram model: one piece per corpus word plus characters."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import T5TokenizerFast  # type: ignore[attr-defined]  # (transformers' lazy module)

    words = sorted({w for line in corpus for w in line.lower().split()})
    chars = sorted({c for w in words for c in w} | set("abcdefghijklmnopqrstuvwxyz0123456789"))
    vocab = [("<pad>", 0.0), ("</s>", 0.0), ("<unk>", 0.0), ("▁", -3.0)]
    vocab += [("▁" + w, -2.0) for w in words] + [(c, -8.0) for c in chars] + [("▁" + c, -9.0) for c in chars]
    tok = Tokenizer(models.Unigram(vocab, unk_id=2, byte_fallback=False))
    tok.normalizer = normalizers.Lowercase()
    tok.pre_tokenizer = pre_tokenizers.Metaspace()
    tok.decoder = decoders.Metaspace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                       special_tokens=[("</s>", 1)])
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "tokenizer.json")
        tok.save(path)
        return T5TokenizerFast(tokenizer_file=path, model_max_length=512, eos_token="</s>", unk_token="<unk>", pad_token="<pad>",
                               extra_ids=0)


# ChatML as the Qwen2 / Qwen2.5 / Qwen3 instruct tokenizers write it: one ``<|im_start|>role ... <|im_end|>`` turn
# per message (content as a string or as a list of ``{"type": "text", "text": ...}`` parts), the assistant
# turn opened by ``add_generation_prompt``, and Qwen3's empty think block when ``enable_thinking=False``.
QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}{{ part['text'] }}{% endfor %}{% endif %}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}"
    "{% endif %}"
)


def byte_bpe(directory: str | os.PathLike, specials: Iterable[str], corpus: Iterable[str] = CORPUS,
             vocab_size: int = 600) -> str:
    """Train a byte-level BPE (GPT-2 / Qwen / Mistral style) on ``corpus`` with ``specials`` as special tokens
    (ids 0, 1, ... in order) and write it as ``tokenizer.json`` in ``directory``; returns the file's path, for
    ``PreTrainedTokenizerFast(tokenizer_file=...)`` or a subclass."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(specials), show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(list(corpus), trainer)
    path = os.path.join(directory, "tokenizer.json")
    tok.save(path)
    return path


def qwen2_tokenizer(corpus: Iterable[str] = CORPUS, vocab_size: int = 600, chat_template: str | None = None):
    """A Qwen2TokenizerFast (byte-level BPE) with the special tokens QwenImage's pipeline uses; ``chat_template``
    (e.g. :data:`QWEN_CHAT_TEMPLATE`) for pipelines that call ``apply_chat_template``."""
    from transformers import Qwen2TokenizerFast  # type: ignore[attr-defined]  # (transformers' lazy module)

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
                "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>"]
    template = ["<|im_start|>system\nDescribe the image.<|im_end|>\n<|im_start|>user\n", "<|im_end|>\n<|im_start|>assistant\n"]
    with tempfile.TemporaryDirectory() as tmp:
        path = byte_bpe(tmp, specials, list(corpus) + template, vocab_size)
        tok = Qwen2TokenizerFast(tokenizer_file=path, model_max_length=1024, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                                 unk_token=None, bos_token=None)
    if chat_template is not None:
        tok.chat_template = chat_template
    return tok
