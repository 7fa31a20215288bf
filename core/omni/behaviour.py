"""Behaviour that travels with declarations: an import path (``"package.module:attribute"``, imported
when first used) or a callable."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def import_path(path: str) -> Any:
    """Import ``"package.module:attr"``."""
    module_name, _, attr = path.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def resolve(behaviour: Any) -> Callable[..., Any]:
    """A declaration's behaviour (``impl``, ``load``, ``build``, ...): a callable, or an import path."""
    return behaviour if callable(behaviour) else import_path(behaviour)
