"""Docs that must match the code: generated tables, hook docs, declaration fields."""

import dataclasses
import re
from pathlib import Path

import pytest

from omni import hookspecs, specs
from omni.matrix import CompatMatrix
from omni.plugins import Selection, load_registry

DOCS = Path(__file__).resolve().parents[2] / "docs"


REGENERATE = "run `python -m omni.docs_tables docs`"


def test_support_matrix_doc_is_generated_and_fresh():
    from omni.docs_tables import matrix_markdown

    expected = matrix_markdown(CompatMatrix(load_registry(selection=Selection(), strict=False)))
    committed = (DOCS / "support-matrix.md").read_text()
    assert committed == expected, f"docs/support-matrix.md is stale: {REGENERATE}"


def test_traits_table_in_the_plugin_guide_is_fresh():
    from omni.docs_tables import replace_generated, traits_markdown

    guide = (DOCS / "plugin-guide.md").read_text()
    expected = replace_generated(guide, "traits", traits_markdown(load_registry(selection=Selection(), strict=False)))
    assert guide == expected, f"the traits table in docs/plugin-guide.md is stale: {REGENERATE}"


HOOKS = sorted(n for n in dir(hookspecs.OmniSpecs) if n.startswith("omni_"))


@pytest.mark.parametrize("hook", HOOKS)
def test_every_hook_is_documented_with_signature_and_example(hook):
    import inspect

    params = [p for p in inspect.signature(getattr(hookspecs.OmniSpecs, hook)).parameters if p != "self"]
    guide = (DOCS / "plugin-guide.md").read_text()
    heading = f"### {hook}({', '.join(params)})"
    assert heading in guide, f"docs/plugin-guide.md lacks '{heading}'"
    section = guide.split(heading, 1)[1].split("\n### ", 1)[0]
    assert "```python" in section and f"def {hook}(" in section, f"{hook} has no example"
    assert "Example::" in getattr(hookspecs.OmniSpecs, hook).__doc__


DECLARATIONS = [specs.FamilySpec, specs.FamilyFacts, specs.Limits, specs.OptimizationSpec, specs.Option,
                specs.ConfigKey, specs.Needs, specs.Claim, specs.ModelSpec, specs.PresetSpec]


@pytest.mark.parametrize("cls", DECLARATIONS, ids=lambda c: c.__name__)
def test_every_declaration_field_is_documented(cls):
    text = (DOCS / "declarations.md").read_text()
    section = text.split(f"## {cls.__name__}", 1)[1].split("\n## ", 1)[0]
    for field in dataclasses.fields(cls):
        assert re.search(rf"`{field.name}`", section), f"{cls.__name__}.{field.name} is not documented"
    assert "Example" in (cls.__doc__ or "") or cls in (specs.FamilyFacts,), cls


def test_the_readme_lists_every_bundled_plugin_and_optimization():
    """The README's "Bundled optimizations" table is written by hand: it must name every distribution
    under plugins/ and every optimization they declare."""
    import tomllib

    root = DOCS.parent
    section = (root / "README.md").read_text().split("## Bundled optimizations")[1].split("\n## ")[0]
    dists = {tomllib.loads(p.read_text())["project"]["name"] for p in root.glob("plugins/*/pyproject.toml")}
    assert not [d for d in sorted(dists) if f"`{d}`" not in section], "README: bundled plugins missing"
    registry = load_registry(selection=Selection(), strict=False)
    names = sorted(n for n, d in registry.optimizations.items() if d.plugin.distribution in dists)
    assert names and not [n for n in names if f"`{n}`" not in section], "README: optimizations missing"
