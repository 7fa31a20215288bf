"""Write a fake installed distribution (``*.dist-info`` + modules) so tests exercise the real
entry-point loader without pip (conda's approach)."""

from __future__ import annotations

import textwrap
from pathlib import Path


def fake_dist(root: Path, dist: str, version: str, entry_points: dict[str, str], modules: dict[str, str]) -> Path:
    """Create ``root/<dist>-<version>.dist-info`` with entry points in group ``omni`` and the given
    top-level modules (``{"module_name": "source"}``). Put ``root`` on ``sys.path`` to import them."""
    root.mkdir(parents=True, exist_ok=True)
    info = root / f"{dist.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n")
    eps = "\n".join(f"{name} = {target}" for name, target in entry_points.items())
    (info / "entry_points.txt").write_text(f"[omni]\n{eps}\n")
    for name, source in modules.items():
        (root / f"{name}.py").write_text(textwrap.dedent(source))
    return info


def install_project(project: Path, root: Path) -> str:
    """"Install" a plugin project folder (a ``pyproject.toml`` with ``[project.entry-points.omni]``) into
    ``root`` without pip: its packages are copied and a ``*.dist-info`` carries its name, version and entry
    points. Put ``root`` on ``sys.path`` (or ``PYTHONPATH``) to load it. Returns the distribution name."""
    import shutil
    import tomllib

    meta = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    info = root / f"{meta['name'].replace('-', '_')}-{meta['version']}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {meta['name']}\nVersion: {meta['version']}\n")
    eps = meta.get("entry-points", {}).get("omni", {})
    (info / "entry_points.txt").write_text("[omni]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    for package in project.iterdir():
        if package.is_dir() and (package / "__init__.py").is_file():
            shutil.copytree(package, root / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    return meta["name"]
