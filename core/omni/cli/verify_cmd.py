"""``omni verify``: prove every supported cell by a real run on tiny models."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from omni.cli.common import console, err, handle_errors, print_json, registry


@handle_errors
def verify(
    family: Optional[str] = typer.Option(None, "--family", "-f", help="Only this family."),
    optimization: Optional[str] = typer.Option(None, "--optimization", "-o", help="Only this optimization."),
    write: Optional[Path] = typer.Option(None, "--write", help="Folder to write verified-matrix.md/.json into."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu or cuda (default: cuda when available)."),
    json_out: bool = typer.Option(False, "--json"),
) -> None:
    """Run each supported, available (family, optimization) cell on the family's tiny model and check it."""
    from omni.environment import Environment
    from omni.errors import UsageError
    from omni.matrix import CompatMatrix
    from omni.verify import Verifier, cells_to_verify, to_markdown

    reg = registry()
    m = CompatMatrix(reg)
    from omni.names import did_you_mean

    if family and family not in m.family_names:
        raise UsageError(f"unknown family {family!r}{did_you_mean(family, m.family_names)}")
    if optimization and optimization not in m.optimization_names:
        raise UsageError(f"unknown optimization {optimization!r}{did_you_mean(optimization, m.optimization_names)}")
    cells = cells_to_verify(reg, Environment.detect(), family=family, optimization=optimization)
    if not cells:
        raise UsageError("no supported cell matches (omni matrix shows the declared cells)")
    verifier = Verifier(reg, device=device)
    results = []
    con = console()
    for model, opt, status in cells:
        res = verifier.verify(model, opt, status)
        results.append(res)
        if not json_out:
            colour = {"pass": "green", "fail": "red"}.get(res.status, "yellow")
            drift = "" if res.max_abs is None else f" max|Δ|={res.max_abs:.2e} PSNR={res.psnr}"
            con.print(f"[{colour}]{res.status:11}[/{colour}] {model:14} {opt:28}{drift} ({res.reason})")
    if write is not None:
        write.mkdir(parents=True, exist_ok=True)
        (write / "verified-matrix.md").write_text(to_markdown(results))
        (write / "verified-matrix.json").write_text(
            __import__("json").dumps([r.to_json() for r in results], indent=2) + "\n")
        err(f"wrote {write / 'verified-matrix.md'} and verified-matrix.json")
    if json_out:
        print_json({"results": [r.to_json() for r in results]})
    failed = [r for r in results if r.status == "fail"]
    if failed:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command("verify")(verify)
