"""Shared CLI plumbing: registry loading from global flags, error handling, output helpers."""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from typer.core import TyperCommand

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


class Command(TyperCommand):
    """Every omni command: help that reads like the docs (``omni run [OPTIONS] MODEL``, no ``<bool>``
    after a flag) and a bad command line answered like every other bad input: one ``error:`` line on
    stderr, exit 2 (not a multi-line box)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            if getattr(param, "is_flag", False) and param.metavar is None:
                param.metavar = ""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.metavar is None:
            option.metavar = ""
        return option

    def collect_usage_pieces(self, ctx: Any) -> list[str]:
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if param.param_type_name == "argument":
                name = (param.metavar or param.name or "").upper()
                pieces.append(name if param.required else f"[{name}]")
        return pieces

    def make_context(self, info_name: str | None, args: list[str], parent: Any = None, **extra: Any) -> Any:
        from typer._click.exceptions import ClickException, NoArgsIsHelpError

        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except NoArgsIsHelpError:
            raise
        except ClickException as exc:
            err(f"error: {exc.format_message()} (omni {info_name} -h for help)")
            raise typer.Exit(exc.exit_code) from None


def use_command_class(app: typer.Typer) -> None:
    """Give every registered command (the core's and plugins') the :class:`Command` behaviour."""
    for info in app.registered_commands:
        if info.cls is None or info.cls is TyperCommand:
            info.cls = Command


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
