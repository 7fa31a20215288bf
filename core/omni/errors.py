"""Exception types. Every user-facing error carries a one-line message and a CLI exit code."""

from __future__ import annotations


class OmniError(Exception):
    """Base class. ``exit_code`` 2 = usage/input error, 1 = runtime failure."""

    exit_code = 1


class UsageError(OmniError):
    """Bad input from the user: unknown model, unknown config key, bad value, refused combination."""

    exit_code = 2


class DeclarationError(OmniError):
    """A plugin yielded a declaration that does not validate."""


class PluginError(OmniError):
    """A plugin failed to load or clashed with another (raised only in strict mode)."""


class FieldError(UsageError):
    """A bad request field (Engine, ``omni run``, ``omni serve``); ``param`` names it, ``status`` is the HTTP
    status a server answers with (400, or 413 for a value over a limit)."""

    def __init__(self, param: str, message: str, *, status: int = 400) -> None:
        super().__init__(f"{param}: {message}")
        self.param = param
        self.status = status


class UnknownModelError(UsageError):
    pass


class ConfigError(UsageError):
    pass


class StrictRefusal(UsageError):
    """``--strict`` refused a run before loading weights."""


class ModelLoadError(OmniError):
    """A model could not be loaded (missing files, corrupt weights)."""


class OptimizationFailed(OmniError):
    """An optimization raised while being applied and could not be rolled back."""
