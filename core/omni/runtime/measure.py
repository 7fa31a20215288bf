"""Measurements for the report: memory, parameter bytes, placement (the rollback fingerprint is in
:mod:`omni.runtime.fingerprint`)."""

from __future__ import annotations

import os
import resource
from typing import Any

COMPONENT_ORDER = ("text_encoder", "text_encoder_2", "text_encoder_3", "image_encoder", "unet", "transformer",
                   "transformer_2", "vae")


def modules(pipe) -> list[tuple[str, Any]]:
    import torch

    out = []
    for name, value in sorted(getattr(pipe, "components", {}).items(),
                              key=lambda kv: (COMPONENT_ORDER.index(kv[0]) if kv[0] in COMPONENT_ORDER else 99, kv[0])):
        if isinstance(value, torch.nn.Module):
            out.append((name, value))
    return out


def tensor_bytes(t) -> int:
    """Storage bytes of a parameter, looking through torchao / GGUF tensor subclasses."""
    inner = getattr(t, "__tensor_flatten__", None)
    if inner is not None and type(t).__name__ not in ("Parameter", "Tensor"):
        try:
            names, _ = t.__tensor_flatten__()
            return sum(tensor_bytes(getattr(t, n)) for n in names)
        except Exception:  # noqa: BLE001
            pass
    return t.numel() * t.element_size()


def param_bytes(pipe) -> dict[str, int]:
    out = {}
    for name, module in modules(pipe):
        seen = set()
        total = 0
        for p in list(module.parameters()) + list(module.buffers()):
            if id(p) in seen:
                continue
            seen.add(id(p))
            total += tensor_bytes(p)
        out[name] = total
    return out


def placement(pipe, formats: dict[str, str]) -> dict[str, dict[str, Any]]:
    out = {}
    for name, module in modules(pipe):
        params = list(module.parameters())
        first = next((p for p in params if p.dtype.is_floating_point), params[0] if params else None)
        kinds = sorted({type(p).__name__ for p in params} - {"Parameter", "Tensor"})
        out[name] = {
            "device": str(first.device) if first is not None else None,
            "dtype": str(first.dtype).replace("torch.", "") if first is not None else None,
            "quantization": formats.get(name) or (", ".join(kinds) if kinds else None),
        }
    return out


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:
        return 0


def peak_rss_bytes() -> int:
    """This process's peak resident set (VmHWM; getrusage would inherit a parent's peak across exec)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def cuda_peaks(reset: bool = True) -> dict[str, int] | None:
    import torch

    if not torch.cuda.is_available():
        return None
    out = {"allocated": torch.cuda.max_memory_allocated(), "reserved": torch.cuda.max_memory_reserved()}
    if reset:
        torch.cuda.reset_peak_memory_stats()
    return out


def reset_cuda_peak() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
