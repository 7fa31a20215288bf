"""Presets come from a plugin, expand per model, and never conflict with themselves."""

import pytest

from omni.plugins import Selection, load_registry
from omni.runtime.session import prepare


@pytest.fixture(scope="module")
def registry():
    return load_registry(selection=Selection(), strict=False)


def test_presets_are_declared_by_the_presets_plugin(registry):
    assert {"vram-first", "throughput-first", "experimental-memory", "lossless"} <= {
        d.spec.name for d in registry.presets.values()}
    assert registry.preset("lossless").plugin.distribution == "omni-plugin-presets"


def test_no_preset_conflicts_with_itself_on_any_family(registry):
    for model in registry.models.values():
        for preset in registry.presets.values():
            prep = prepare(model.spec.name, {}, preset=preset.spec.name, registry=registry)
            conflicts = [s for s in prep.plan.skipped if s.status == "conflict"]
            assert not conflicts, (model.spec.name, preset.spec.name, conflicts)


def test_lossless_leaves_out_what_costs_time_and_says_what_it_expanded_to(registry):
    prep = prepare("tiny-flux", {}, preset="lossless", registry=registry)
    names = prep.plan.names()
    assert names and all(registry.optimization(n).spec.lossless for n in names)
    assert "compile" not in names and not any(registry.optimization(n).spec.places_pipeline for n in names)
    assert any(n.startswith("preset lossless expanded to: ") for n in prep.config.notes)


def test_empty_or_unknown_preset_is_one_line(registry):
    from omni.errors import ConfigError

    with pytest.raises(ConfigError, match="preset: the name is empty"):
        prepare("tiny-flux", {}, preset="", registry=registry)
    with pytest.raises(ConfigError, match="unknown preset 'vram-frist' \\(did you mean vram-first"):
        prepare("tiny-flux", {}, preset="vram-frist", registry=registry)
