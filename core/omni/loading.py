"""Default loading of diffusers pipelines, offline (``local_files_only``), and the checks every
load passes first: the device exists, the dtype is one a pipeline runs in, the model is on this
machine, and its weights files are sound (safetensors that open; pickle only when the user opted in).

Family plugins point ``FamilySpec.load`` here unless they need something special. Load-time
optimizations (GGUF, torchao) have already edited ``ctx.load_kwargs`` /
``ctx.component_overrides`` when this runs.
"""

from __future__ import annotations

import json
import os
from typing import Any

from omni.behaviour import resolve
from omni.errors import ModelLoadError, UsageError
from omni.options import parse_load_dtype

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl")


def torch_dtype(name: str):
    import torch

    try:
        return getattr(torch, parse_load_dtype(name))
    except ValueError as exc:
        raise UsageError(f"dtype: {exc}") from None


def check_device(device: str) -> None:
    """A CUDA device asked for on a host without one is bad input (one line), not a load failure."""
    if device.split(":")[0] != "cuda":
        return
    import torch

    if not torch.cuda.is_available():
        why = "torch was built without CUDA" if torch.version.cuda is None else "no CUDA device is visible"
        raise UsageError(f"device {device}: this host cannot run on CUDA ({why}); use --device cpu")


def local_folder(source: str) -> str:
    """A local folder for a pipeline source: a folder, or a hub id already in the local HF cache
    (omni runs offline: an id that is not there is a one-line ``UsageError``)."""
    if os.path.isdir(source):
        return source
    from huggingface_hub import snapshot_download

    try:
        return str(snapshot_download(source, local_files_only=True))
    except Exception:  # noqa: BLE001 - every way of "not here" is the same answer
        raise UsageError(f"{source} is not in the local Hugging Face cache ({_hf_cache()}); omni runs offline: "
                         f"download it first (hf download {source}) or pass a local folder") from None


def _check_safetensors(path: str, shown_as: str) -> None:
    from safetensors import safe_open

    try:
        with safe_open(path, framework="pt") as handle:  # reads the header and checks it against the size
            handle.keys()
    except Exception as exc:  # noqa: BLE001 - SafetensorError, OSError: the file is bad either way
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise UsageError(f"{shown_as} is not a valid safetensors file ({first[:120]}): damaged or truncated; "
                         "build or download it again") from None


def check_component(folder: str, shown_as: str, *, allow_pickle: bool) -> list[str]:
    """One component folder (shown in messages as ``shown_as``): every safetensors file opens (header and
    length checked, no tensor read), every shard an index names exists; weights that exist only as
    pickle (``.bin``/``.pt``: unpickling runs code from the file) are refused unless ``allow_pickle``.
    Returns the pickle files that will load."""
    files = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
    safetensors = [f for f in files if f.endswith(".safetensors")]
    for f in safetensors:
        _check_safetensors(os.path.join(folder, f), f"{shown_as}/{f}")
    for f in (f for f in files if f.endswith(".safetensors.index.json")):
        try:
            with open(os.path.join(folder, f), encoding="utf-8") as fh:
                shards = set(json.load(fh)["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise UsageError(f"{shown_as}/{f} is not a valid shard index ({type(exc).__name__})") from None
        missing = sorted(str(s) for s in shards if not os.path.isfile(os.path.join(folder, str(s))))
        if missing:
            raise UsageError(f"{shown_as}/{f} names shard {missing[0]}, which is missing")
    pickles = [f"{shown_as}/{f}" for f in files if f.endswith(PICKLE_SUFFIXES)]
    if not pickles or safetensors:
        return []
    if not allow_pickle:
        raise UsageError(f"{pickles[0]} holds pickle weights, and unpickling runs code from the file: refused. "
                         "Convert it to safetensors, or pass --allow-pickle (config allow_pickle: true) if you "
                         "trust it")
    return pickles


def check_weights(folder: str, *, allow_pickle: bool) -> list[str]:
    """Before loading: :func:`check_component` for every component ``model_index.json`` lists."""
    index = os.path.join(folder, "model_index.json")
    try:
        with open(index, encoding="utf-8") as fh:
            components = [k for k, v in json.load(fh).items() if not k.startswith("_") and isinstance(v, list)]
    except (OSError, ValueError, AttributeError) as exc:
        raise UsageError(f"{index} cannot be read: {type(exc).__name__}") from None
    return [p for name in components for p in check_component(
        os.path.join(folder, name), os.path.join(folder, name), allow_pickle=allow_pickle)]


def model_source(ctx) -> str:
    """Local folder for the resolved model: a built named model, a local folder, or a cached hub id."""
    m = ctx.model
    if m.model is not None:
        built = resolve(m.model.build)()
        return str(built)
    if m.path is not None:
        return m.path
    if m.hub_id is not None:
        return m.hub_id
    raise UsageError(
        f"{m.ref!r} names a family, not a model: pass a local folder, a hub id already in the HF cache, "
        f"or a named model such as tiny-{m.family}"
    )


def load_diffusers(ctx, step) -> Any:
    """Build the pipeline with ``DiffusionPipeline.from_pretrained(..., local_files_only=True)``."""
    from diffusers import DiffusionPipeline

    check_device(ctx.device)
    dtype = torch_dtype(ctx.dtype)
    quiet_libraries()
    source = local_folder(model_source(ctx))
    pickled = check_weights(source, allow_pickle=ctx.allow_pickle)
    if pickled:
        ctx.notes.append(f"loaded pickle weights (allow_pickle: the user trusts them): {', '.join(pickled)}")
    kwargs = dict(ctx.load_kwargs)
    kwargs.setdefault("dtype", dtype)
    for component, make in ctx.component_overrides.items():
        folder = os.path.join(source, component) if os.path.isdir(source) else None
        kwargs[component] = make(folder)
    try:
        pipe = DiffusionPipeline.from_pretrained(source, local_files_only=True, **kwargs)
    except (OSError, EnvironmentError, ValueError) as exc:
        where = source if os.path.isdir(str(source)) else f"the local Hugging Face cache ({_hf_cache()})"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelLoadError(f"cannot load {ctx.model.ref!r} from {where}: {first}") from exc
    pipe.set_progress_bar_config(disable=True)
    return pipe


def _hf_cache() -> str:
    try:
        from huggingface_hub.constants import HF_HUB_CACHE

        return HF_HUB_CACHE
    except ImportError:  # pragma: no cover
        return "~/.cache/huggingface/hub"


def quiet_libraries() -> None:
    """Silence the libraries' own progress bars and info logs (omni shows its own progress)."""
    import diffusers
    import transformers

    diffusers.utils.logging.disable_progress_bar()
    diffusers.utils.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()
