"""Coercion of user values (YAML / ``--set KEY=VALUE`` strings) to declared option types."""

from __future__ import annotations

import math
import reprlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni.specs import Option

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}
DTYPES = ("float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2")
LOAD_DTYPES = ("float32", "float16", "bfloat16")  # what a pipeline's weights can be loaded and run in
_DTYPE_ALIASES = {
    "fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16",
    "fp8": "float8_e4m3fn", "fp8_e4m3fn": "float8_e4m3fn", "e4m3": "float8_e4m3fn",
    "fp8_e5m2": "float8_e5m2", "e5m2": "float8_e5m2",
}


_SHOWN = reprlib.Repr()
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 60, 60, 40
_SHOWN.maxlevel, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxdict, _SHOWN.maxset = 3, 4, 4, 4, 4


def shown(value: Any) -> str:
    """``repr(value)`` capped for an error message: long strings and big or deeply nested (even
    self-referencing) structures are cut with ``...``, so echoing user input stays one short line."""
    text = _SHOWN.repr(value)
    return text if len(text) <= 100 else text[:97] + "..."


def parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{shown(value)} is not a boolean (use true/false)")


def parse_dtype(value: Any) -> str:
    text = str(value).strip().lower().removeprefix("torch.") if isinstance(value, str) else repr(value)
    text = _DTYPE_ALIASES.get(text, text)
    if text not in DTYPES:
        raise ValueError(f"{shown(value)} is not a dtype (one of {', '.join(DTYPES)}, or fp32/bf16/fp16/fp8)")
    return text


def parse_load_dtype(value: Any) -> str:
    """A dtype to load and run a pipeline in: float32, float16 or bfloat16 (float8 is a storage format
    for quantization and layerwise casting, not a dtype a pipeline computes in)."""
    text = parse_dtype(value)
    if text not in LOAD_DTYPES:
        raise ValueError(f"{text} is a storage format, not a dtype to load a pipeline in (use {', '.join(LOAD_DTYPES)};"
                         " for float8 weights use layerwise_casting or torchao)")
    return text


def _number(opt: "Option", value: Any, kind: type) -> Any:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"{shown(value)} is not {'a number' if kind is float else 'an integer'}")
    try:
        num = float(value) if kind is float else int(value.strip(), 0) if isinstance(value, str) else value
    except ValueError:
        raise ValueError(f"{shown(value)} is not {'a number' if kind is float else 'an integer'}") from None
    if isinstance(num, float) and not math.isfinite(num):  # NaN passes every range check; inf has no int
        raise ValueError(f"{shown(value)} is not a finite number")
    if kind is int:
        if num != int(num):
            raise ValueError(f"{shown(value)} is not an integer")
        num = int(num)
    if opt.min is not None and num < opt.min:
        raise ValueError(f"{num} is below the minimum {opt.min}")
    if opt.max is not None and num > opt.max:
        raise ValueError(f"{num} is above the maximum {opt.max}")
    return num


def coerce_option(opt: "Option", value: Any) -> Any:
    if value is None:
        return None
    t = opt.type
    if t == "bool":
        return parse_bool(value)
    if t == "int":
        return _number(opt, value, int)
    if t == "float":
        return _number(opt, value, float)
    if t == "dtype":
        return parse_dtype(value)
    if t == "choice":
        text = str(value).strip()
        if text not in opt.choices:
            from omni.names import did_you_mean

            hint = did_you_mean(text, [c for c in opt.choices if c != text])
            raise ValueError(f"{shown(value)} is not one of {', '.join(opt.choices)}{hint}")
        return text
    if t == "floats":
        if isinstance(value, str):
            items = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ValueError(f"{shown(value)} is not a list of numbers")
        try:
            numbers = tuple(float(v) for v in items if not isinstance(v, bool))
        except (TypeError, ValueError):
            raise ValueError(f"{shown(value)} is not a list of numbers") from None
        if len(numbers) != len(items) or not all(math.isfinite(v) for v in numbers):
            raise ValueError(f"{shown(value)} is not a list of finite numbers")
        return numbers
    if t == "strs":
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
            return tuple(str(v).strip() for v in value if str(v).strip())
        raise ValueError(f"{shown(value)} is not a list of strings")
    if t in ("str", "path"):
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise ValueError(f"{shown(value)} is not a {'path' if t == 'path' else 'string'}")
        return str(value)
    raise ValueError(f"unknown option type {t!r}")
