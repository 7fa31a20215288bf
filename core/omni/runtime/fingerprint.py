"""A fingerprint of everything a step may change on a pipeline, so that "pipeline unchanged" in a
report is a fact: the pipeline's class and instance attributes; each component's identity, class
and instance attributes; each module's class, hooks, forward override and plain attributes; each
parameter/buffer's identity, dtype, device, shape, storage and version counter (in-place writes);
the scheduler's class, attributes and config. Written here: no library fingerprints a pipeline."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_MODULE_SKIP = frozenset({"_parameters", "_buffers", "_modules", "_forward_hooks", "_forward_pre_hooks",
                          "_backward_hooks", "_backward_pre_hooks", "_state_dict_hooks", "_state_dict_pre_hooks",
                          "_load_state_dict_pre_hooks", "_load_state_dict_post_hooks", "_forward_hooks_with_kwargs",
                          "_forward_pre_hooks_with_kwargs", "_forward_hooks_always_called",
                          "_non_persistent_buffers_set", "_is_full_backward_hook"})


def value_key(value: Any, depth: int = 0) -> Any:
    """A comparable key: plain values by value, tensors by identity + version, the rest by identity."""
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    if isinstance(value, float):
        return repr(value) if math.isnan(value) else value
    if isinstance(value, (tuple, list)) and depth < 2 and len(value) <= 64:
        return (type(value).__name__, tuple(value_key(v, depth + 1) for v in value))
    if isinstance(value, Mapping) and depth < 2 and len(value) <= 64:
        return ("map", tuple(sorted((str(k), value_key(v, depth + 1)) for k, v in value.items())))
    if hasattr(value, "_version") and hasattr(value, "data_ptr"):
        return ("tensor", id(value), _version(value), _ptr(value))
    func = getattr(value, "__func__", None)
    if func is not None:  # a bound method stored on the instance (a wrapped ``vae.decode``)
        return ("method", id(func), id(getattr(value, "__self__", None)))
    return ("object", type(value).__name__, id(value))


def _version(t: Any) -> int:
    try:
        return int(t._version)
    except Exception:  # noqa: BLE001 - inference tensors and subclasses without a version counter
        return -1


def _sample(t: Any, n: int = 4096) -> float | None:
    """Sum of up to ``n`` evenly strided elements (float64): a cheap value check, whatever the tensor's size,
    used to tell an in-place write that an undo restored from one it did not. None when unreadable."""
    try:
        flat = t.detach().reshape(-1)
        if flat.numel() == 0 or flat.device.type == "meta":
            return 0.0
        step = max(1, flat.numel() // n)
        return float(flat[::step].double().sum())
    except Exception:  # noqa: BLE001 - tensor subclasses (torchao, GGUF) may not support this
        return None


def _ptr(t: Any) -> int:
    try:
        return 0 if t.device.type == "meta" else int(t.data_ptr())
    except Exception:  # noqa: BLE001 - tensor subclasses (torchao, GGUF) may not expose storage
        return -1


def _attrs(prefix: str, obj: Any, out: dict[str, Any], skip: frozenset[str] = frozenset()) -> None:
    for name, value in vars(obj).items():
        if name not in skip:
            out[f"{prefix}.{name}"] = value_key(value)


def _module(prefix: str, module: Any, out: dict[str, Any]) -> None:
    for mname, mod in module.named_modules():
        where = f"{prefix}.{mname}" if mname else prefix
        registry = getattr(mod, "_diffusers_hook", None)
        hooks = tuple(sorted(registry.hooks)) if registry is not None and hasattr(registry, "hooks") else ()
        out[f"{where}#module"] = (type(mod).__name__, id(type(mod)), len(mod._forward_hooks),
                                  len(mod._forward_pre_hooks), hooks)
        _attrs(where, mod, out, _MODULE_SKIP)
    for pname, p in list(module.named_parameters(remove_duplicate=False)) + list(
            module.named_buffers(remove_duplicate=False)):
        out[f"{prefix}.{pname}#tensor"] = (id(p), type(p).__name__, str(p.dtype), str(p.device), tuple(p.shape),
                                           _ptr(p), _sample(p), _version(p))


def fingerprint(pipe: Any) -> dict[str, Any]:
    """path -> comparable key, for everything a step could change."""
    import torch

    out: dict[str, Any] = {"pipeline#class": (type(pipe).__name__, id(type(pipe)))}
    _attrs("pipeline", pipe, out)
    for cname, comp in sorted(getattr(pipe, "components", {}).items()):
        out[f"{cname}#component"] = (type(comp).__name__, id(comp))
        if isinstance(comp, torch.nn.Module):
            _module(cname, comp, out)
        elif comp is not None and hasattr(comp, "__dict__"):
            _attrs(cname, comp, out)
            config = getattr(comp, "config", None)
            if isinstance(config, Mapping):
                out[f"{cname}#config"] = value_key(dict(config))
    return out


def diff(before: Mapping[str, Any], after: Mapping[str, Any], *, undone: bool = False, limit: int = 3) -> list[str]:
    """Human descriptions of what changed (at most ``limit`` plus a count). With ``undone`` (the step's undo
    actions ran), a tensor whose only change is its version counter, with equal sampled values, counts as
    restored: a version counter cannot be turned back."""
    changed = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key, _MISSING), after.get(key, _MISSING)
        if a == b:
            continue
        if undone and key.endswith("#tensor") and a is not _MISSING and b is not _MISSING \
                and a[:-1] == b[:-1] and a[-2] is not None:
            continue
        changed.append(key)
    out = []
    for key in changed[:limit]:
        path, _, kind = key.partition("#")
        if key not in before:
            out.append(f"{path} added")
        elif key not in after:
            out.append(f"{path} removed")
        elif kind == "tensor" and before[key][:6] == after[key][:6]:
            out.append(f"{path} written in place")
        elif kind == "module":
            out.append(f"{path}: class or hooks changed")
        else:
            out.append(f"{path} changed")
    if len(changed) > limit:
        out.append(f"{len(changed) - limit} more")
    return out


_MISSING = object()
