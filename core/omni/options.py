"""Coercion of user values (YAML / ``--set KEY=VALUE`` strings) to declared option types."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from omni.specs import Option

_TRUE = {"1", "true", "yes", "on", "y"}
_FALSE = {"0", "false", "no", "off", "n"}
DTYPES = ("float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2")
_DTYPE_ALIASES = {
    "fp32": "float32", "float": "float32", "fp16": "float16", "half": "float16", "bf16": "bfloat16",
    "fp8": "float8_e4m3fn", "fp8_e4m3fn": "float8_e4m3fn", "e4m3": "float8_e4m3fn",
    "fp8_e5m2": "float8_e5m2", "e5m2": "float8_e5m2",
}


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
    raise ValueError(f"{value!r} is not a boolean (use true/false)")


def parse_dtype(value: Any) -> str:
    text = str(value).strip().lower().removeprefix("torch.")
    text = _DTYPE_ALIASES.get(text, text)
    if text not in DTYPES:
        raise ValueError(f"{value!r} is not a dtype (one of {', '.join(DTYPES)}, or fp32/bf16/fp16/fp8)")
    return text


def _number(opt: "Option", value: Any, kind: type) -> Any:
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a number")
    try:
        num = kind(value) if kind is float else int(str(value), 0) if isinstance(value, str) else int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{value!r} is not {'a number' if kind is float else 'an integer'}") from None
    if kind is int and isinstance(value, float) and value != int(value):
        raise ValueError(f"{value!r} is not an integer")
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

            raise ValueError(f"{value!r} is not one of {', '.join(opt.choices)}{did_you_mean(text, opt.choices)}")
        return text
    if t == "floats":
        if isinstance(value, str):
            items = [v for v in value.replace("[", "").replace("]", "").split(",") if v.strip()]
        elif isinstance(value, (list, tuple)):
            items = list(value)
        else:
            raise ValueError(f"{value!r} is not a list of numbers")
        try:
            return tuple(float(v) for v in items)
        except (TypeError, ValueError):
            raise ValueError(f"{value!r} is not a list of numbers") from None
    if t == "strs":
        if isinstance(value, str):
            return tuple(v.strip() for v in value.split(",") if v.strip())
        if isinstance(value, (list, tuple)) and all(isinstance(v, (str, int, float)) for v in value):
            return tuple(str(v).strip() for v in value if str(v).strip())
        raise ValueError(f"{value!r} is not a list of strings")
    if t in ("str", "path"):
        if isinstance(value, (dict, list)):
            raise ValueError(f"{value!r} is not a string")
        return str(value)
    raise ValueError(f"unknown option type {t!r}")
