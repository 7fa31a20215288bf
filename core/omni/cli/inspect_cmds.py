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
    if json_out:
        print_json({"plugins": [p.to_json() for p in reg.plugins], "warnings": reg.warnings})
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

    reg = registry()
    resolved = resolve_model(model, reg)
    env = Environment.detect()
    matrix = CompatMatrix(reg, env=env, disabled=disable)
    cells = matrix.row(resolved.family)
    fam = reg.family(resolved.family)
    if json_out:
        print_json(
            {
                "model": resolved.to_json(),
                "family": {"name": fam.spec.name, "traits": sorted(fam.spec.traits), **fam.plugin.to_json()},
                "environment": env.to_json(),
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
    con.print(f"declared by {fam.plugin}; traits: {', '.join(sorted(fam.spec.traits))}")
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
    from omni.matrix import SYMBOLS, CompatMatrix

    if json_out and markdown:
        raise UsageError("--json and --markdown are exclusive")
    reg = registry()
    if markdown:
        typer.echo(CompatMatrix(reg, env=None).to_markdown(), nl=False)
        return
    m = CompatMatrix(reg, env=Environment.detect())
    if json_out:
        print_json(m.to_json())
        return
    from rich.table import Table

    table = Table(title="families × optimizations (this machine)")
    table.add_column("family")
    names = m.optimization_names
    for name in names:
        table.add_column(name, justify="center", overflow="fold")
    for fam in m.family_names:
        table.add_row(fam, *[SYMBOLS[m.cell(fam, o).status] for o in names])
    con = console()
    con.print(table)
    con.print("  ".join(f"{sym} {status.value}" for status, sym in SYMBOLS.items()))
    for a, b, reason in m.conflicts():
        con.print(f"conflict: {a} × {b}: {reason}")


def register(app: typer.Typer) -> None:
    app.command("plugins")(plugins)
    app.command("capabilities")(capabilities)
    app.command("matrix")(matrix)
