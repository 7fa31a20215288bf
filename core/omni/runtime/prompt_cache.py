"""The prompt-embedding cache: a lossless LRU around ``pipe.encode_prompt`` (written here: diffusers
re-encodes the prompt on every call). The key is every argument of the call (prompt, negative
prompt, images per prompt, sequence length, device, ...) plus the identity and version counters of
the text encoders, so a changed encoder (a LoRA, new weights) never hits. Calls with tensor
arguments (pre-computed embeddings) bypass it. Bounded in entries and bytes."""

from __future__ import annotations

import inspect
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any


def _plain(value: Any) -> Any:
    """A hashable key for an argument, or raise TypeError when it must not be cached (a tensor)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    if type(value).__name__ == "device":
        return str(value)
    if type(value).__name__ == "dtype":
        return str(value)
    raise TypeError(type(value).__name__)


def _size(value: Any) -> int:
    if hasattr(value, "element_size") and hasattr(value, "numel"):
        return int(value.element_size() * value.numel())
    if isinstance(value, (list, tuple)):
        return sum(_size(v) for v in value)
    return 0


def _clone(value: Any) -> Any:
    if hasattr(value, "clone"):
        return value.clone()
    if isinstance(value, tuple):
        return tuple(_clone(v) for v in value)
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


class PromptCache:
    """LRU of ``encode_prompt`` results. ``hits``/``misses`` count since the last :meth:`take_counts`."""

    def __init__(self, max_entries: int = 64, max_bytes: int = 256 * 2**20) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("the prompt cache needs at least one entry and one byte")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._entries: OrderedDict[Any, tuple[Any, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.bypassed = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def take_counts(self) -> tuple[int, int, int]:
        with self._lock:
            out = (self.hits, self.misses, self.bypassed)
            self.hits = self.misses = self.bypassed = 0
            return out

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def _store(self, key: Any, value: Any) -> None:
        size = _size(value)
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = (value, size)
            self._bytes += size
            while len(self._entries) > self.max_entries or self._bytes > self.max_bytes:
                _, (_, dropped) = self._entries.popitem(last=False)
                self._bytes -= dropped

    def wrap(self, pipe: Any, encoder_state: Callable[[], Any]) -> Callable[..., Any] | None:
        """A replacement for ``pipe.encode_prompt`` (None when the pipeline has none)."""
        original = getattr(pipe, "encode_prompt", None)
        if original is None:
            return None
        signature = inspect.signature(original)

        def encode_prompt(*args: Any, **kwargs: Any) -> Any:
            try:
                bound = signature.bind(*args, **kwargs)
                key = (encoder_state(), tuple(sorted((k, _plain(v)) for k, v in bound.arguments.items())))
            except TypeError:
                with self._lock:
                    self.bypassed += 1
                return original(*args, **kwargs)
            with self._lock:
                found = self._entries.get(key)
                if found is not None:
                    self._entries.move_to_end(key)
                    self.hits += 1
            if found is not None:
                return _clone(found[0])
            out = original(*args, **kwargs)
            with self._lock:
                self.misses += 1
            self._store(key, _clone(out))
            return out

        return encode_prompt


def encoder_state(pipe: Any, names: tuple[str, ...]) -> Callable[[], Any]:
    """Identity + version counters of the text encoders' parameters (changes when weights change)."""

    def state() -> Any:
        out = []
        for name in names:
            module = getattr(pipe, name, None)
            if module is None or not hasattr(module, "parameters"):
                continue
            params = list(module.parameters())
            out.append((name, id(module), len(params), sum(int(getattr(p, "_version", 0)) for p in params),
                        tuple(id(p) for p in params[:4])))
        return tuple(out)

    return state
