"""``check_undo``: an optimization's undo gives the un-optimized output back (for plugin tests)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_undo(model: str, optimize: list[str], *, sets: Mapping[str, Any] | None = None, seed: int = 0,
               prompt: str = "a red circle on a blue background", **generation: Any) -> tuple[Any, Any, Any]:
    """Generate with a pipeline of the named model ``model``, apply ``optimize`` to that same
    pipeline with ``omni.optimize``, generate, ``undo()``, generate again.

    Asserts that every requested step applied and is reported reversible, that undo names no problem,
    and that the output after undo equals the first output exactly. Returns ``(baseline, optimized,
    pipe)``: the two outputs (numpy arrays) and the pipeline after undo, for further checks."""
    import numpy as np

    import omni
    from omni.plugins import get_registry

    args = {**dict(get_registry().model(model).spec.default_generation), **generation}
    base = omni.run(model, prompt, seed=seed, **args)
    handle = omni.optimize(base.pipe, optimize=optimize, sets=sets)
    for name in optimize:
        res = handle.report.result(name)
        assert res is not None and res.status == "applied", (name, res and res.status, res and res.reason)
        assert res.details["reversible"] is True, (name, res.details)
    optimized = handle.generate(prompt, seed=seed, **args).output
    assert handle.undo() == []
    after = handle.generate(prompt, seed=seed, **args).output
    np.testing.assert_array_equal(after, base.output, err_msg=f"{optimize} on {model}: undo did not restore the output")
    return base.output, optimized, base.pipe
