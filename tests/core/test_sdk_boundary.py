"""Bundled plugins use only the public SDK a third party uses: ``omni.sdk`` (and the top-level ``omni`` API for
``omni.run`` / ``omni.Engine``). Scanned from their sources, including imports inside functions."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ALLOWED = {"omni", "omni.sdk"}
PACKAGES = sorted(p for folder in ("plugins", "model_registry", "docs/examples") for p in (REPO / folder).glob("*/omni_*")
                  if p.is_dir())


def omni_imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names if a.name == "omni" or a.name.startswith("omni."))
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "omni" or node.module.startswith("omni."):
                out.add(node.module)
    return out


@pytest.mark.parametrize("package", PACKAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_plugin_imports_only_the_sdk(package):
    bad = {str(f.relative_to(REPO)): sorted(omni_imports(f) - ALLOWED) for f in package.rglob("*.py")}
    bad = {k: v for k, v in bad.items() if v}
    assert not bad, f"bundled plugins may import only omni.sdk (or omni): {bad}"


def test_the_scan_sees_lazy_imports(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from omni.runtime.api import run\n    import omni.sdk\n")
    assert omni_imports(src) == {"omni.runtime.api", "omni.sdk"}
