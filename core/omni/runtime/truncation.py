"""What a pipeline silently drops from a prompt: diffusers pipelines truncate each text encoder's
input to its length (CLIP tokenizers: ``tokenizer.model_max_length``, 77, whatever the call says;
T5/UMT5/Qwen: the call's ``max_sequence_length`` when it is smaller) and say nothing. Counted with the pipeline's own tokenizers, reported as a
note, so a report never describes a prompt the model did not see."""

from __future__ import annotations

import inspect
from typing import Any

_HUGE = 10**6  # transformers' "no limit" model_max_length is 1e30


def _call_default(pipe: Any, name: str) -> Any:
    param = inspect.signature(type(pipe).__call__).parameters.get(name)
    return None if param is None or param.default is inspect.Parameter.empty else param.default


def prompt_notes(pipe: Any, texts: dict[str, Any], gen_args: dict[str, Any]) -> list[str]:
    """One note per (text, tokenizer) whose token count exceeds what the pipeline keeps.
    ``texts``: ``{"prompt": ..., "negative_prompt": ...}`` (non-strings are skipped)."""
    seq = gen_args.get("max_sequence_length", _call_default(pipe, "max_sequence_length"))
    notes = []
    for name in sorted(getattr(pipe, "components", {}) or {}):
        tokenizer = getattr(pipe, name, None) if name.startswith("tokenizer") else None
        if tokenizer is None or not callable(tokenizer):
            continue
        own = getattr(tokenizer, "model_max_length", None)
        clip = "CLIP" in type(tokenizer).__name__  # CLIP encoders always take model_max_length (77)
        limits = [n for n in (own, None if clip else seq) if isinstance(n, int) and 0 < n < _HUGE]
        if not limits:
            continue
        keep = min(limits)
        for field, text in texts.items():
            if not isinstance(text, str):
                continue
            count = len(tokenizer(text, truncation=False)["input_ids"])
            if count > keep:
                why = "max_sequence_length" if keep == seq else "the tokenizer's model_max_length"
                notes.append(f"{field} truncated by the pipeline: {count} tokens for {name} "
                             f"({type(tokenizer).__name__}), which keeps the first {keep} ({why}); "
                             "the rest did not reach the model")
    return notes
