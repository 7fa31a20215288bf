"""Choosing the denoiser's attention kernel with diffusers' ``set_attention_backend``.

Before anything changes, the backend is checked (package present, diffusers' own requirement check)
and *run once* on small random tensors on the run's device and dtype: a kernel this host cannot run
(``_native_efficient`` and ``_native_cudnn`` on a CPU) is a ``Skip`` with torch's reason, not a
failure in the middle of a generation. ``set_attention_backend`` also sets diffusers' process-wide
default backend; omni puts that back at once (the processors carry the choice), so other pipelines
in the process keep theirs. Undo puts every processor's previous backend back.
"""

from __future__ import annotations

from typing import Any

from omni.sdk import Applied, RunContext, Skip, Step, denoisers


def _processors(module: Any) -> list[Any]:
    return [m.processor for m in module.modules()
            if getattr(m, "processor", None) is not None and hasattr(m.processor, "_attention_backend")]


def _probe(backend: str, device: str, dtype: Any) -> None:
    """Run the backend once on (1, 16, 2, 64) tensors; ``Skip`` with the reason when it cannot run here."""
    import torch
    from diffusers.models.attention_dispatch import (
        AttentionBackendName,
        _check_attention_backend_requirements,
        dispatch_attention_fn,
    )

    name = AttentionBackendName(backend)
    try:
        _check_attention_backend_requirements(name)
        q, k, v = (torch.randn(1, 16, 2, 64, device=device, dtype=dtype) for _ in range(3))
        out = dispatch_attention_fn(q, k, v, backend=name)
    except Exception as exc:  # noqa: BLE001 - the kernel's own reason
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise Skip(f"attention backend {backend} cannot run on {device} {str(dtype).removeprefix('torch.')}: "
                   f"{first}") from None
    if not torch.isfinite(out).all():
        raise Skip(f"attention backend {backend} returned non-finite values on {device}")


def apply(ctx: RunContext, step: Step) -> Applied:
    from diffusers.models.attention_dispatch import _AttentionBackendRegistry

    backend = step.options["backend"]
    targets = []
    for name, module in denoisers(ctx):
        processors = _processors(module)
        if not hasattr(module, "set_attention_backend") or not processors:
            kinds = sorted({type(getattr(m, "processor", None)).__name__ for m in module.modules()
                            if getattr(m, "processor", None) is not None})
            raise Skip(f"{name}'s attention processors ({', '.join(kinds) or 'none'}) do not go through diffusers' "
                       "attention dispatcher: set_attention_backend would change nothing")
        targets.append((name, module, processors))
    param = next(targets[0][1].parameters())
    _probe(backend, str(param.device), param.dtype)
    previous = [(p, p._attention_backend) for _, _, procs in targets for p in procs]

    def undo() -> None:
        for processor, value in previous:
            processor._attention_backend = value

    step.on_undo(undo)
    default = _AttentionBackendRegistry._active_backend
    try:
        for _, module, _ in targets:
            module.set_attention_backend(backend)
    finally:
        _AttentionBackendRegistry.set_active_backend(default)  # the processors carry the choice
    return Applied(details={"backend": backend, "processors": {n: len(p) for n, _, p in targets},
                            "device": str(param.device), "dtype": str(param.dtype).removeprefix("torch.")})


# one impl per declared optimization (the declaration's import path names it)
attention_backend = attention_cudnn = attention_flash = attention_flash3 = attention_sage = attention_xformers = apply
