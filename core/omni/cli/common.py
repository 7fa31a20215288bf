"""Shared CLI plumbing: registry loading from global flags, error handling, output helpers."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer

from omni.errors import OmniError

F = TypeVar("F", bound=Callable[..., Any])

_state: dict[str, Any] = {"no_plugins": False, "verbose": False}


def registry():
    from omni.plugins import Selection, get_registry, load_registry, set_registry

    if _state.get("registry") is None or _state.get("loaded_with") != _state["no_plugins"]:
        _state["loaded_with"] = _state["no_plugins"]
        reg = load_registry(selection=Selection.from_env(no_plugins=_state["no_plugins"]))
        set_registry(reg)
        _state["registry"] = reg
        for problem in reg.problems:
            err(f"warning: {problem}")
    return get_registry()


def err(message: str) -> None:
    from rich.console import Console

    Console(stderr=True, highlight=False, soft_wrap=True).print(message, markup=False)


def console():
    """stdout console; when piped (no terminal to size against) use a wide layout instead of 80 columns."""
    import os

    from rich.console import Console

    width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 140
    return Console(highlight=False, width=width)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def handle_errors(fn: F) -> F:
    """Turn OmniError into one line on stderr and its exit code; never a traceback for user errors."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except OmniError as exc:
            err(f"error: {exc}")
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            err("interrupted")
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
