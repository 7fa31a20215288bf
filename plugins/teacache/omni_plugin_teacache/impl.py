"""Applying TeaCache to a pipeline (the CACHE stage): where the coefficients come from, the hooks
on every denoiser, and the step's stats / reset / reconfigure / undo."""

from __future__ import annotations

from typing import Any

from omni.sdk import Applied, HitFlags, Skip, UsageError, blocks, denoisers

from omni_plugin_teacache import store
from omni_plugin_teacache.facts import DEFAULT_PROBE


def _from_file(path: str, family: str) -> dict[str, Any]:
    try:
        data = store.read(path)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if data["family"] != family:
        raise UsageError(f"TeaCache calibration {path} was fitted for family {data['family']}, not {family}")
    return data


def _calibration(data: dict[str, Any], why: str) -> tuple[tuple[float, ...], str, str]:
    weights = data.get("weights", "unknown")
    return (tuple(data["coefficients"]), data["probe"],
            f"calibration {data['path']} ({why}; fitted on {data.get('model', 'an unnamed model')}, {weights} weights)")


def resolve_coefficients(options: dict, family, model: str) -> tuple[tuple[float, ...], str, str]:
    """-> (coefficients, probe name, where they came from). Raises Skip when there are none.

    Precedence: the ``coefficients`` option > the ``calibration`` file option (the user insists) >
    a calibration of this very model in the store > a calibration of the family on trained weights >
    the family's published coefficients. A calibration of another model's random weights is never
    used unless named with ``teacache.calibration``.
    """
    published = family.extras.get("teacache", {})
    probe = published.get("probe", DEFAULT_PROBE)
    if options.get("coefficients"):
        coeffs = tuple(options["coefficients"])
        if len(coeffs) != 5:
            raise UsageError(f"teacache.coefficients needs 5 values (degree 4), got {len(coeffs)}")
        return coeffs, probe, "option coefficients"
    if options.get("calibration"):
        return _calibration(_from_file(str(options["calibration"]), family.name), "teacache.calibration")
    stored = store.calibrations(family.name)
    own = [d for d in stored if d.get("model") == model]
    if own:
        return _calibration(own[0], "fitted on this model")
    # a catch-all family (generic: any pipeline no family claims) groups unrelated models, so a fit on
    # one model's trained weights says nothing about another's: there, calibrations are per model
    trained = [d for d in stored if store.verified(d)] if not family.catch_all else []
    if trained:
        return _calibration(trained[0], "fitted on trained weights")
    if published.get("coefficients"):
        return tuple(published["coefficients"]), probe, published["source"]
    if stored:
        other = stored[0]
        why = (f"the {family.name} family groups unrelated pipelines, so a calibration serves only its own model"
               if family.catch_all else "it is unverified for other models")
        raise Skip(f"no TeaCache coefficients for {model}: the {family.name} calibration {other['path']} was fitted on "
                   f"the {other.get('weights', 'unknown')} weights of {other.get('model', 'another model')} and "
                   f"{why}; pass teacache.calibration={other['path']} to use it anyway")
    raise Skip(f"no TeaCache coefficients for {family.name}: fit them with `omni calibrate teacache MODEL` "
               "or pass teacache.coefficients")


def targets(ctx) -> list[tuple[str, Any, list]]:
    """(name, denoiser, blocks) of every denoiser; Skip when one cannot take TeaCache."""
    from omni_plugin_teacache.hooks import check_blocks

    out = []
    for name, module in denoisers(ctx):
        found = blocks(module, ctx.family.facts.block_attrs)
        try:
            check_blocks(found)
        except ValueError as exc:
            raise Skip(f"{name}: {exc}") from None
        out.append((name, module, found))
    return out


def apply(ctx, step) -> Applied:
    from omni_plugin_teacache.hooks import Installed, Settings
    from omni_plugin_teacache.probes import PROBES

    opts = step.options
    coeffs, probe_name, source = resolve_coefficients(opts, ctx.family, store.model_id(ctx.model))
    found = targets(ctx)
    settings = Settings.from_options(opts)
    flags = HitFlags()
    installed: list[Installed] = []

    def undo() -> None:
        while installed:
            installed.pop().remove()

    step.on_undo(undo)
    total_steps = lambda: getattr(ctx.pipe, "_num_timesteps", None)  # noqa: E731
    for _, module, stack in found:
        installed.append(Installed(module, stack, probe=PROBES[probe_name], coefficients=coeffs, settings=settings,
                                   total_steps=total_steps, flags=flags))

    def reset() -> None:
        for one in installed:
            one.reset()
        flags.read()

    return Applied(
        details={"probe": probe_name, "coefficients": list(coeffs), "coefficients_source": source,
                 "denoisers": [t[0] for t in found], "blocks": sum(len(t[2]) for t in found)},
        stats=flags.read, reset=reset, reconfigure=settings.update)
