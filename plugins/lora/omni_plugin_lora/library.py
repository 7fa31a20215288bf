"""Adapter files: naming them (``[NAME=]FILE[:SCALE]``, or a name in a library folder or among the
adapters shipped here), reading their safetensors header, and checking them against the pipeline
before anything is loaded, so a wrong file is one line naming the problem instead of a diffusers
traceback or, worse, a silent change: diffusers' Flux loader *expands* a transformer's layers when a
LoRA's shapes are larger (``_maybe_expand_transformer_param_shape_or_error_``).

Checks: the file exists and is safetensors; ``omni.family`` metadata (written by omni's training)
matches; every key belongs to a component the pipeline's LoRA loader loads; every targeted module
exists with the input/output sizes of the adapter's ``lora_A``/``lora_B``; text-encoder layers are
loadable here (transformers 5.24 loads them only with peft >= 0.22, which the package index lacks).
Keys are converted with the pipeline class's own ``lora_state_dict`` (kohya, xlabs and other formats
diffusers accepts) and, where diffusers does it too, ``convert_unet_state_dict_to_peft``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omni.sdk import Skip, UsageError

SHIPPED = Path(__file__).resolve().parent / "adapters"
SUFFIX = ".safetensors"
_ENTRY = re.compile(r"(?:(?P<name>[A-Za-z0-9_.-]+)=)?(?P<path>.+?)(?::(?P<scale>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?))?")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_A = (".lora_A.weight", ".lora_down.weight", ".lora.down.weight")
_B = (".lora_B.weight", ".lora_up.weight", ".lora.up.weight")


@dataclass(frozen=True)
class Adapter:
    """A checked adapter file: what it targets and how large it is."""

    name: str
    path: str
    rank: int
    modules: frozenset[str]  # "component.module.path"
    components: tuple[str, ...]
    metadata: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def text_encoder(self) -> bool:
        return any(c.startswith("text_encoder") for c in self.components)


def parse_entry(text: str, where: str) -> tuple[str | None, str, float]:
    """``[NAME=]FILE[:SCALE]`` -> (name or None, file or adapter name, scale)."""
    m = _ENTRY.fullmatch(str(text).strip())
    if not m or not m.group("path"):
        raise UsageError(f"{where}: {text!r} is not [NAME=]FILE[:SCALE]")
    return m.group("name"), m.group("path"), float(m.group("scale")) if m.group("scale") else 1.0


def parse_active(text: str, where: str) -> list[tuple[str, float]] | None:
    """``name:scale,name2`` -> [(name, scale)]; ``""`` -> None (the load-time set); ``none`` -> []."""
    text = str(text or "").strip()
    if not text:
        return None
    if text.lower() == "none":
        return []
    out: list[tuple[str, float]] = []
    for item in (i.strip() for i in text.split(",") if i.strip()):
        name, _, scale = item.partition(":")
        if not _NAME.match(name):
            raise UsageError(f"{where}: {name!r} is not an adapter name (letters, digits, _ . -)")
        try:
            value = float(scale) if scale else 1.0
        except ValueError:
            raise UsageError(f"{where}: scale {scale!r} of {name} is not a number") from None
        if any(n == name for n, _ in out):
            raise UsageError(f"{where}: {name} is named twice")
        out.append((name, value))
    return out


class Library:
    """Where adapter names resolve: files, then ``<library>/<name>.safetensors``, then the shipped ones."""

    def __init__(self, folder: str = "") -> None:
        self.folder = os.path.abspath(os.path.expanduser(folder)) if folder else ""
        if self.folder and not os.path.isdir(self.folder):
            raise UsageError(f"lora.library: {folder} is not a folder")

    def names(self) -> dict[str, str]:
        """Adapter name -> file, for the library folder and the shipped adapters (library first)."""
        out: dict[str, str] = {}
        for base in (self.folder, str(SHIPPED)):
            if base and os.path.isdir(base):
                for entry in sorted(os.listdir(base)):
                    if entry.endswith(SUFFIX):
                        out.setdefault(entry[: -len(SUFFIX)], os.path.join(base, entry))
        return out

    def locate(self, ref: str, where: str) -> str:
        """A file for ``ref``: a path (a folder holding diffusers' ``pytorch_lora_weights.safetensors``
        counts), or an adapter name."""
        path = os.path.abspath(os.path.expanduser(ref))
        if os.path.isdir(path):
            path = os.path.join(path, "pytorch_lora_weights" + SUFFIX)
        if os.path.isfile(path):
            if not path.endswith(SUFFIX):
                raise UsageError(f"{where}: {ref} is not a .safetensors file (omni loads LoRA from safetensors only)")
            return path
        return self.named(ref, where, f"{ref} is not a file, and")

    def named(self, name: str, where: str, lead: str = "") -> str:
        """The file of a named adapter (the library folder, then the shipped adapters); never a path,
        so a request cannot make the engine read an arbitrary file."""
        known = self.names()
        if name in known:
            return known[name]
        places = "lora.library or the shipped adapters" if self.folder else "the shipped adapters (no lora.library)"
        raise UsageError(f"{where}: {lead or ''}{' ' if lead else ''}no adapter is named {name!r} in lora.paths, "
                         f"{places}; known: {', '.join(known) or 'none'}")

    def entry(self, text: str, where: str) -> tuple[str, str, float]:
        """``[NAME=]FILE[:SCALE]`` -> (name, file, scale)."""
        name, ref, scale = parse_entry(text, where)
        path = self.locate(ref, where)
        return name or Path(path).stem, path, scale


def header(path: str, where: str) -> tuple[list[str], dict[str, str]]:
    """Tensor names and metadata of a safetensors file (no tensor is read)."""
    from safetensors import safe_open

    try:
        with safe_open(path, "pt") as fh:
            return list(fh.keys()), dict(fh.metadata() or {})
    except Exception as exc:  # noqa: BLE001 - a corrupt or foreign file: one line
        raise UsageError(f"{where}: {path} is not a readable safetensors file ({type(exc).__name__}: "
                         f"{str(exc).splitlines()[0] if str(exc) else ''})") from None


def loader(pipe: Any) -> tuple[str, ...]:
    """The components the pipeline's diffusers LoRA loader loads; ``Skip`` when it has none."""
    modules = tuple(getattr(pipe, "_lora_loadable_modules", ()) or ())
    if not hasattr(pipe, "load_lora_weights") or not modules:
        raise Skip(f"{type(pipe).__name__} has no LoRA loader in diffusers")
    # the loader hands a denoiser its layers through the model's own load_lora_adapter (peft support)
    denoisers = [(m, getattr(pipe, m)) for m in modules
                 if not m.startswith("text_encoder") and getattr(pipe, m, None) is not None]
    if denoisers and not any(hasattr(module, "load_lora_adapter") for _, module in denoisers):
        named = ", ".join(f"{m} ({type(module).__name__})" for m, module in denoisers)
        raise Skip(f"{type(pipe).__name__}'s {named} takes no LoRA layers in diffusers (no load_lora_adapter)")
    return modules


def text_encoder_problem() -> str | None:
    """Why transformers cannot load text-encoder LoRA layers here, or None."""
    try:
        from transformers.integrations.peft import MIN_PEFT_VERSION
        from transformers.utils.peft_utils import check_peft_version

        check_peft_version(min_version=MIN_PEFT_VERSION)
    except ImportError:
        return None
    except ValueError:
        from importlib.metadata import version

        return (f"transformers {version('transformers')} loads text-encoder LoRA layers only with peft >= "
                f"{MIN_PEFT_VERSION} (installed: {version('peft')})")
    return None


def _split(key: str) -> tuple[str, str] | None:
    for suffix, kind in [(s, "A") for s in _A] + [(s, "B") for s in _B]:
        if key.endswith(suffix):
            return key[: -len(suffix)], kind
    return None


def _sizes(module: Any) -> tuple[int, int] | None:
    for a, b in (("in_features", "out_features"), ("in_channels", "out_channels")):
        if hasattr(module, a) and hasattr(module, b):
            return int(getattr(module, a)), int(getattr(module, b))
    return None


def check_adapter(pipe: Any, family: str, name: str, path: str, where: str) -> Adapter:
    """Read ``path`` and check it against ``pipe``; raises ``UsageError`` naming the first problem."""
    keys, metadata = header(path, where)
    trained_for = metadata.get("omni.family")
    if trained_for and trained_for != family:
        raise UsageError(f"{where}: {name} was trained for the {trained_for} family; this model is {family}")
    components = loader(pipe)
    try:
        loaded = type(pipe).lora_state_dict(path)
    except Exception as exc:  # noqa: BLE001 - a format diffusers does not accept
        raise UsageError(f"{where}: {name}: diffusers' {type(pipe).__name__} LoRA loader cannot read {path} "
                         f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    state = loaded[0] if isinstance(loaded, tuple) else loaded
    if not state:
        raise UsageError(f"{where}: {name}: {path} holds no LoRA weights ({len(keys)} tensors)")
    per_component: dict[str, dict[str, Any]] = {}
    for key, value in state.items():
        prefix, _, rest = key.partition(".")
        if prefix not in components:
            raise UsageError(f"{where}: {name} has layers for {prefix!r} (e.g. {key}), which {type(pipe).__name__}'s "
                             f"LoRA loader does not load (it loads {', '.join(components)}): an adapter for another "
                             "family?")
        per_component.setdefault(prefix, {})[rest] = value
    modules: set[str] = set()
    rank = 0
    for comp, sub in per_component.items():
        if comp.startswith("text_encoder"):
            problem = text_encoder_problem()
            if problem:
                raise UsageError(f"{where}: {name} has {comp} layers: {problem}")
        rank = max(rank, _check_component(pipe, comp, sub, name, where, modules))
    return Adapter(name=name, path=path, rank=rank, modules=frozenset(modules),
                   components=tuple(sorted(per_component)), metadata=metadata)


def _check_component(pipe: Any, comp: str, sub: dict[str, Any], name: str, where: str, modules: set[str]) -> int:
    from diffusers.utils import convert_unet_state_dict_to_peft

    target = getattr(pipe, comp, None)
    if target is None:
        raise UsageError(f"{where}: {name} has layers for {comp}, which this pipeline does not have")
    if not any("lora_A" in k for k in sub):
        sub = convert_unet_state_dict_to_peft(sub)
    rank = 0
    for key, value in sub.items():
        split = _split(key)
        if split is None:
            continue  # alphas, biases, norms: diffusers' loader handles them
        path, kind = split
        try:
            module = target.get_submodule(path)
        except AttributeError:
            raise UsageError(f"{where}: {name} targets {comp}.{path}, which this {type(target).__name__} does not "
                             "have (an adapter for another model?)") from None
        modules.add(f"{comp}.{path}")
        sizes = _sizes(module)
        shape = tuple(value.shape)
        if kind == "B":
            rank = max(rank, shape[1])
        if sizes is None:
            continue
        want = sizes[0] if kind == "A" else sizes[1]
        have = shape[1] if kind == "A" else shape[0]
        if want != have:
            side = "input" if kind == "A" else "output"
            raise UsageError(f"{where}: {name}: {comp}.{path} has {side} size {want} but the adapter's lora_{kind} "
                             f"has shape {list(shape)} (made for another model size?)")
    return rank
