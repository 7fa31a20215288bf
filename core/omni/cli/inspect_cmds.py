"""``omni plugins``, ``omni capabilities MODEL``, ``omni matrix``: declaration-only, never import torch."""

from __future__ import annotations

import typer

from omni.cli.common import console, handle_errors, print_json, registry

STATUS_STYLE = {
    "supported": "green",
    "untested": "yellow",
    "unsupported": "red",
    "unavailable": "magenta",
    "disabled": "dim",
    "active": "green",
    "failed": "red",
    "invalid": "red",
}


def _styled(text: str) -> str:
    style = STATUS_STYLE.get(text)
    return f"[{style}]{text}[/{style}]" if style else text


@handle_errors
def plugins(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")) -> None:
    """List installed plugins: distribution, version, status and what each provides."""
    reg = registry()
    contested = [{"kind": kind, "name": cs[0].spec.name, "declared_by": [c.plugin.to_json() for c in cs]}
                 for (kind, _), cs in reg.contested.items()]
    if json_out:
        print_json({"plugins": [p.to_json() for p in reg.plugins], "contested": contested, "findings": reg.findings})
        return
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="omni plugins", show_lines=False)
    for col in ("name", "distribution", "version", "status", "provides"):
        table.add_column(col)
    for p in reg.plugins:
        provides = ", ".join(p.provides) if p.status == "active" else escape(p.error or "")
        table.add_row(p.name, p.distribution, p.version, _styled(p.status), provides)
    con = console()
    con.print(table)
    if not reg.plugins:
        con.print("no plugins installed (pip install omni-family-flux, omni-plugin-vae, ...)")
    for problem in reg.problems:
        if problem.startswith("plugin "):
            continue
        con.print(f"[red]contested:[/red] {escape(problem)}")
    for finding in reg.findings:
        con.print(f"[yellow]check:[/yellow] {escape(finding)}")


@handle_errors
def capabilities(
    model: str = typer.Argument(..., help="Family name, named model (tiny-flux), hub id or local diffusers folder."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
    disable: list[str] = typer.Option([], "--disable", help="Show an optimization as disabled (repeatable)."),
) -> None:
    """Show, for MODEL, every optimization's status on this machine, with reasons and provenance."""
    from omni.environment import Environment
    from omni.matrix import CompatMatrix
    from omni.resolve import resolve_model

    from omni.resolve import inferred_registry

    reg = registry()
    resolved = resolve_model(model, reg)
    reg, inferred = inferred_registry(resolved, reg)
    env = Environment.detect()
    matrix = CompatMatrix(reg, env=env, disabled=disable)
    cells = matrix.row(resolved.family)
    fam = reg.family(resolved.family)
    if json_out:
        print_json(
            {
                "model": resolved.to_json(),
                "family": {"name": fam.spec.name, "traits": sorted(reg.traits(fam.spec.name)),
                           "tasks": list(fam.spec.facts.tasks), **fam.plugin.to_json()},
                "environment": env.to_json(),
                "inferred": inferred,
                "optimizations": [
                    {
                        **c.to_json(),
                        "stage": reg.optimization(c.optimization).spec.stage.value,
                        "lossless": reg.optimization(c.optimization).spec.lossless,
                    }
                    for c in cells
                ],
            }
        )
        return
    from rich.markup import escape
    from rich.table import Table

    con = console()
    con.print(f"[bold]{escape(model)}[/bold] → family [bold]{fam.spec.name}[/bold] ({escape(resolved.how)})")
    con.print(f"declared by {fam.plugin}; tasks: {', '.join(fam.spec.facts.tasks)}; "
              f"traits: {', '.join(sorted(reg.traits(fam.spec.name)))}")
    for note in inferred:
        con.print(f"inferred: {escape(note)} (more once loaded: block lists, VAE tiling, cache_context)")
    con.print(f"environment: accelerator {env.accelerator or 'none'} ({env.source})")
    table = Table(show_lines=False)
    for col in ("optimization", "stage", "status", "lossless", "reasons", "plugin"):
        table.add_column(col, overflow="fold")
    for c in cells:
        spec = reg.optimization(c.optimization).spec
        table.add_row(
            c.optimization,
            spec.stage.value,
            _styled(c.status.value),
            "yes" if spec.lossless else "no",
            escape("; ".join(c.reasons)),
            reg.optimization(c.optimization).plugin.distribution,
        )
    con.print(table)
    if not cells:
        con.print("no optimization plugins installed")


@handle_errors
def matrix(
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output (with this machine's availability)."),
    markdown: bool = typer.Option(False, "--markdown", help="The published, environment-free tables (docs)."),
) -> None:
    """Families × optimizations and optimizations × optimizations."""
    from omni.environment import Environment
    from omni.errors import UsageError
    from omni.matrix import CompatMatrix

    if json_out and markdown:
        raise UsageError("--json and --markdown are exclusive")
    reg = registry()
    if markdown:
        from omni.docs_tables import matrix_markdown

        typer.echo(matrix_markdown(CompatMatrix(reg, env=None)), nl=False)
        return
    m = CompatMatrix(reg, env=Environment.detect())
    if json_out:
        print_json(m.to_json())
        return
    render_matrix(m)


def _aliases(names: list[str], width: int) -> dict[str, str]:
    """Column headers: the names themselves when they fit, else unique prefixes."""
    if sum(len(n) + 3 for n in names) <= width:
        return {n: n for n in names}
    out: dict[str, str] = {}
    for n in names:
        k = 3
        while any(o.startswith(n[:k]) for o in names if o != n) and k < len(n):
            k += 1
        out[n] = n[:k]
    return out


def render_matrix(m) -> None:
    """One row per optimization, one short column per family, a legend, conflicts grouped by rule."""
    from rich.table import Table

    from omni.matrix import SYMBOLS

    con = console()
    families = m.family_names
    names = m.optimization_names
    width = (con.width or 120) - max((len(n) for n in names), default=10) - 12
    alias = _aliases(families, width)
    table = Table(title="optimizations × families (this machine)", show_edge=False, pad_edge=False)
    table.add_column("optimization", no_wrap=True)
    table.add_column("stage", no_wrap=True)
    for fam in families:
        table.add_column(alias[fam], justify="center", no_wrap=True)
    for name in names:
        stage = m.registry.optimization(name).spec.stage.value
        table.add_row(name, stage, *[SYMBOLS[m.cell(fam, name).status] for fam in families])
    con.print(table)
    con.print("legend: " + "  ".join(f"{sym} {status.value}" for status, sym in SYMBOLS.items()))
    short = {a: f for f, a in alias.items() if a != f}
    if short:
        con.print("families: " + ", ".join(f"{a} = {f}" for a, f in short.items()))
    groups: dict[str, list[str]] = {}
    named = []
    for a, b, reason in m.conflicts():
        spec_a = m.registry.optimization(a).spec
        spec_b = m.registry.optimization(b).spec
        if spec_a.exclusive_group and spec_a.exclusive_group == spec_b.exclusive_group:
            members = groups.setdefault(spec_a.exclusive_group, [])
            members.extend(x for x in (a, b) if x not in members)
        else:
            named.append(f"{a} × {b}: {reason}")
    for group, members in groups.items():
        con.print(f"one {group} method at a time: {', '.join(members)}")
    for line in named:
        con.print(f"conflict: {line}")
    con.print("why a cell is not supported: omni capabilities MODEL")


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("capabilities")(capabilities)
    app.command("matrix")(matrix)
