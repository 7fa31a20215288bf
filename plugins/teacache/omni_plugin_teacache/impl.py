"""Applying TeaCache to a pipeline (the CACHE stage)."""

from __future__ import annotations

from omni.runtime.context import Applied, Skip

from omni_plugin_teacache import store
from omni_plugin_teacache.hooks import block_list, check_blocks, install
from omni_plugin_teacache.probes import PROBES


def resolve_coefficients(options: dict, family) -> tuple[tuple[float, ...], str, str]:
    """-> (coefficients, probe name, where they came from). Raises Skip when there are none.

    Precedence: ``coefficients`` option > ``calibration`` file option > the store's file for the
    family > the family's published ``TeaCacheFacts``.
    """
    facts = family.facts.teacache
    probe = facts.probe if facts else "block0-input"
    if options.get("coefficients"):
        coeffs = tuple(options["coefficients"])
        if len(coeffs) != 5:
            raise Skip(f"teacache.coefficients needs 5 values (degree 4), got {len(coeffs)}")
        return coeffs, probe, "option coefficients"
    path = options.get("calibration")
    data = None
    if path:
        try:
            data = store.read(path)
        except ValueError as exc:
            from omni.errors import UsageError

            raise UsageError(str(exc)) from None
        data["path"] = path
    else:
        data = store.calibrated().get(family.name)
    if data is not None:
        return tuple(data["coefficients"]), data["probe"], f"calibration {data['path']}"
    if facts and facts.coefficients:
        return facts.coefficients, probe, facts.source or "published"
    raise Skip(f"no TeaCache coefficients for {family.name}: run `omni calibrate teacache MODEL` "
               "or pass teacache.coefficients")


def apply(ctx, step) -> Applied:
    opts = step.options
    coeffs, probe_name, source = resolve_coefficients(opts, ctx.family)
    if probe_name not in PROBES:
        raise Skip(f"unknown TeaCache probe point {probe_name!r} (known: {', '.join(PROBES)})")
    targets = []
    for name, module in ctx.denoisers():
        blocks = block_list(module, ctx.family.facts.block_attrs)
        try:
            check_blocks(blocks)
        except ValueError as exc:
            raise Skip(f"{name}: {exc}") from None
        targets.append((name, module, blocks))
    if not targets:
        raise Skip("the pipeline has no denoiser component")
    flags: list[str] = []
    removers = []
    total_steps = lambda: getattr(ctx.pipe, "_num_timesteps", None)  # noqa: E731
    for _, module, blocks in targets:
        removers.append(install(module, blocks, probe=PROBES[probe_name], coefficients=coeffs,
                                threshold=float(opts["rel_l1_thresh"]), interval=int(opts["interval"] or 0),
                                force_last=bool(opts["force_last"]), total_steps=total_steps, flags=flags))

    def stats() -> list[str]:
        out = list(flags)
        flags.clear()
        return out

    def undo() -> None:
        for remove in removers:
            remove()

    return Applied(
        details={"probe": probe_name, "coefficients": list(coeffs), "coefficients_source": source,
                 "denoisers": [t[0] for t in targets], "blocks": sum(len(t[2]) for t in targets)},
        undo=undo, stats=stats)
