"""Per-denoiser-call hit flags read from cache-dit's own counters (nothing is recomputed here).

cache-dit keeps one ``CachedContext`` per cached block list; each denoiser call advances its
``accumulated_transformer_executed_steps`` and each reused call appends to ``cached_steps`` (or
``cfg_cached_steps`` for the CFG branch) and bumps ``accumulated_cached_steps`` /
``cfg_accumulated_cached_steps``. Like ``cache_dit.summary``, the reader uses the last context of
each denoiser. The contexts are rebuilt at every pipeline call (and when cache-dit refreshes one),
so a context object the reader has not seen before starts from zero.
"""

from __future__ import annotations


class HitReader:
    """``reader()`` -> ``["computed" | "reused", ...]`` for the denoiser calls since its previous call."""

    def __init__(self, pipe, denoisers) -> None:
        self.pipe = pipe
        self.denoisers = list(denoisers)
        self.seen: dict[tuple[int, str], tuple[object, int, int]] = {}
        self.totals = {"computed": 0, "reused": 0}

    def _contexts(self):
        manager = getattr(self.pipe, "_context_manager", None)
        if manager is None:
            return
        contexts = manager._cached_context_manager
        for index, denoiser in enumerate(self.denoisers):
            names = getattr(denoiser, "_context_names", None) or []
            if names and names[-1] in contexts:
                yield (index, names[-1]), contexts[names[-1]]

    def reset(self) -> None:
        """After an aborted generation: forget the contexts seen and free their cached tensors (cache-dit
        rebuilds the contexts at the start of the next call; until then they would hold the aborted
        call's residuals)."""
        for _, context in self._contexts():
            context.clear_buffers()
        self.seen.clear()

    def __call__(self) -> list[str]:
        flags: list[str] = []
        for key, context in self._contexts():
            calls = context.accumulated_transformer_executed_steps
            reused = context.accumulated_cached_steps + context.cfg_accumulated_cached_steps
            last, seen_calls, seen_reused = self.seen.get(key, (None, 0, 0))
            if last is not context:
                seen_calls = seen_reused = 0
            new_reused = reused - seen_reused
            flags += ["reused"] * new_reused + ["computed"] * (calls - seen_calls - new_reused)
            self.seen[key] = (context, calls, reused)
        for flag in flags:
            self.totals[flag] += 1
        return flags
