"""Step observation that does not depend on the pipeline's callback API (written here: diffusers
offers ``callback_on_step_end`` only on newer pipelines, and the legacy ``callback`` elsewhere).

During one generation :class:`StepObserver` installs, and removes on exit:

* a forward pre-hook on each denoiser: the first call ends text encoding, each call's timestep is
  recorded, and the abort flag is checked before every denoiser call;
* an instance wrapper on ``pipe.scheduler.step``: diffusers' denoising loops call it once per step,
  so it closes a step (time, cache flags from every ``Applied.stats``, progress, abort);
  where a pipeline never calls it, a change of the denoiser's timestep closes the step instead;
* an instance wrapper on ``vae.decode`` (decode time, the "decoding" phase).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

EventListener = Callable[[str, dict[str, Any]], None]


class Cancelled(Exception):
    """Raised inside the pipeline call to abort a generation between steps (caught by generate)."""

    def __init__(self, steps: int) -> None:
        super().__init__(f"cancelled after {steps} step(s)")
        self.steps = steps


def _timestep_of(args: tuple, kwargs: dict) -> float | None:
    t = kwargs.get("timestep", args[1] if len(args) > 1 else None)
    try:
        if t is not None and hasattr(t, "flatten"):
            return float(t.flatten()[0]) if t.numel() else None
        return float(t) if isinstance(t, (int, float)) else None
    except Exception:  # noqa: BLE001 - an odd timestep type only disables the fallback grouping
        return None


def _wrap_instance(obj: Any, name: str, make: Callable[[Callable[..., Any]], Callable[..., Any]]) -> Callable[[], None]:
    """Replace ``obj.name`` by ``make(original)`` on the instance; returns the restore function."""
    had = name in vars(obj)
    previous = vars(obj).get(name)
    setattr(obj, name, make(getattr(obj, name)))

    def restore() -> None:
        if had:
            setattr(obj, name, previous)
        else:
            vars(obj).pop(name, None)

    return restore


class StepObserver:
    """Context manager observing one pipeline call. Results: ``step_times``, ``hits``, ``encode_s``,
    ``decode_s``, ``steps``."""

    def __init__(self, ctx: Any, *, on_event: EventListener | None = None, cancel: threading.Event | None = None,
                 expected_steps: int | None = None) -> None:
        self.ctx = ctx
        self.on_event = on_event
        self.cancel = cancel
        self.expected_steps = expected_steps
        self.readers = {name: a.stats for name, a in ctx.applied.items() if a.stats is not None}
        self.hits: dict[str, list[dict[str, Any]]] = {name: [] for name in self.readers}
        self.step_times: list[float] = []
        self.decode_s = 0.0
        self.encode_s: float | None = None
        self._t0 = 0.0
        self._mark: float | None = None  # start of the open step
        self._open = False
        self._timestep: float | None = None
        self._by_scheduler = False
        self._undo: list[Callable[[], None]] = []

    # ---------------------------------------------------------------- events
    def _emit(self, name: str, **data: Any) -> None:
        if self.on_event is not None:
            self.on_event(name, data)

    @property
    def steps(self) -> int:
        return len(self.step_times)

    def _total(self) -> int | None:
        timesteps = getattr(getattr(self.ctx.pipe, "scheduler", None), "timesteps", None)
        try:
            return int(len(timesteps)) if timesteps is not None else self.expected_steps
        except TypeError:
            return self.expected_steps

    def _check_cancel(self) -> None:
        if self.cancel is not None and self.cancel.is_set():
            raise Cancelled(self.steps)

    def _close_step(self) -> None:
        if not self._open:
            return
        now = time.perf_counter()
        self.step_times.append(now - (self._mark if self._mark is not None else now))
        self._mark = now
        self._open = False
        computed = reused = 0
        for name, reader in self.readers.items():
            flags = reader()
            row = {"step": self.steps - 1, "computed": flags.count("computed"), "reused": flags.count("reused")}
            self.hits[name].append(row)
            computed += row["computed"]
            reused += row["reused"]
        self._emit("step", step=self.steps, total=self._total(), seconds=round(self.step_times[-1], 6),
                   computed=computed, reused=reused)

    # ---------------------------------------------------------------- hooks
    def _pre_denoiser(self, module: Any, args: tuple, kwargs: dict) -> None:
        self._check_cancel()
        now = time.perf_counter()
        if self.encode_s is None:
            self.encode_s = now - self._t0
            self._mark = now
            self._emit("phase", phase="denoising", total=self._total())
        if not self._by_scheduler:  # read the timestep (a device sync on a GPU) only while it is needed
            t = _timestep_of(args, kwargs)
            if self._open and t is not None and self._timestep is not None and t != self._timestep:
                self._close_step()  # this pipeline never called scheduler.step: group calls by timestep
                self._check_cancel()
            self._timestep = t
        self._open = True

    def _scheduler_step(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def step(*args: Any, **kwargs: Any) -> Any:
            out = original(*args, **kwargs)
            self._by_scheduler = True
            self._open = True
            self._close_step()
            self._check_cancel()
            return out

        return step

    def _decode(self, original: Callable[..., Any]) -> Callable[..., Any]:
        def decode(*args: Any, **kwargs: Any) -> Any:
            self._close_step()
            if self.decode_s == 0.0:
                self._emit("phase", phase="decoding")
            t0 = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.decode_s += time.perf_counter() - t0

        return decode

    # ---------------------------------------------------------------- install / remove
    def __enter__(self) -> StepObserver:
        import torch

        pre = torch.compiler.disable(self._pre_denoiser)
        try:
            for _, module in self.ctx.denoisers():
                handle = module.register_forward_pre_hook(pre, with_kwargs=True)
                self._undo.append(handle.remove)
            pipe = self.ctx.pipe
            scheduler = getattr(pipe, "scheduler", None)
            if scheduler is not None and callable(getattr(scheduler, "step", None)):
                self._undo.append(_wrap_instance(scheduler, "step", self._scheduler_step))
            vae = getattr(pipe, "vae", None)
            if vae is not None and callable(getattr(vae, "decode", None)):
                self._undo.append(_wrap_instance(vae, "decode", self._decode))
        except BaseException:
            self.remove()
            raise
        for reader in self.readers.values():
            reader()  # drop anything recorded before this generation
        self._t0 = time.perf_counter()
        self._emit("phase", phase="encoding")
        return self

    def finish(self) -> None:
        """Close the last step when the pipeline returned without a decode the observer saw."""
        self._close_step()
        if self.encode_s is None:
            self.encode_s = time.perf_counter() - self._t0

    def remove(self) -> None:
        for undo in reversed(self._undo):
            undo()
        self._undo.clear()

    def __exit__(self, *exc: Any) -> None:
        self.remove()
