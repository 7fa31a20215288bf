"""The plugin manager: isolation, validation, clashes, disabling, provenance, strict mode."""

import pytest

from omni.errors import PluginError
from omni.plugins import Selection


def test_loads_real_declarations_with_provenance(plugin_dir, load, opt_src, fam_src):
    plugin_dir("omni-plugin-alpha", "1.2.3", {"alpha": "alpha_mod"}, {"alpha_mod": opt_src("alpha_opt", "alpha_mod")})
    plugin_dir("omni-family-acme", "0.4.0", {"acme": "acme_mod"}, {"acme_mod": fam_src("acme")})
    reg = load()
    assert [p.status for p in reg.plugins] == ["active", "active"]
    declared = reg.optimization("alpha_opt")
    assert (declared.plugin.name, declared.plugin.distribution, declared.plugin.version) == (
        "alpha", "omni-plugin-alpha", "1.2.3")
    assert reg.family("acme").plugin.distribution == "omni-family-acme"


def test_plugin_failing_at_import_is_isolated(plugin_dir, load, opt_src):
    plugin_dir("omni-plugin-boom", "0.1", {"boom": "boom_mod"}, {"boom_mod": "raise RuntimeError('kaput')\n"})
    plugin_dir("omni-plugin-ok", "0.1", {"ok": "ok_mod"}, {"ok_mod": opt_src("ok_opt", "ok_mod")})
    reg = load()
    by_name = {p.name: p for p in reg.plugins}
    assert by_name["boom"].status == "failed" and "RuntimeError: kaput" in by_name["boom"].error
    assert by_name["ok"].status == "active" and "ok_opt" in reg.optimizations


def test_invalid_declaration_marks_plugin_invalid(plugin_dir, load):
    bad = '''
import omni
from omni.specs import OptimizationSpec
@omni.hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(name="lossy", stage="cache", summary="x", lossless=False, impl="m:f")
'''
    wrong_type = '''
import omni
@omni.hookimpl
def omni_register_families():
    return [{"name": "dict-family"}]
'''
    plugin_dir("omni-plugin-bad", "0.1", {"bad": "bad_mod"}, {"bad_mod": bad})
    plugin_dir("omni-plugin-wrong", "0.1", {"wrong": "wrong_mod"}, {"wrong_mod": wrong_type})
    reg = load()
    by_name = {p.name: p for p in reg.plugins}
    assert by_name["bad"].status == "invalid" and "tolerance_psnr" in by_name["bad"].error
    assert by_name["wrong"].status == "invalid" and "yielded dict, expected FamilySpec" in by_name["wrong"].error
    assert not reg.optimizations and not reg.families


def test_unknown_hook_name_is_invalid(plugin_dir, load):
    typo = '''
import omni
@omni.hookimpl
def omni_register_familes():
    return []
'''
    plugin_dir("omni-plugin-typo", "0.1", {"typo": "typo_mod"}, {"typo_mod": typo})
    rec = load().plugins[0]
    assert rec.status == "invalid" and "omni_register_familes" in rec.error


def test_name_clash_names_both_distributions(plugin_dir, load, opt_src):
    plugin_dir("omni-plugin-aaa", "1.0", {"aaa": "aaa_mod"}, {"aaa_mod": opt_src("same_name", "aaa_mod")})
    plugin_dir("omni-plugin-bbb", "2.0", {"bbb": "bbb_mod"}, {"bbb_mod": opt_src("same_name", "bbb_mod")})
    reg = load()
    by_name = {p.name: p for p in reg.plugins}
    assert by_name["aaa"].status == "active"
    assert by_name["bbb"].status == "invalid"
    assert "omni-plugin-aaa 1.0" in by_name["bbb"].error and "omni-plugin-bbb 2.0" in by_name["bbb"].error
    assert reg.optimization("same_name").plugin.name == "aaa"


def test_optimization_without_any_implementation_is_invalid(plugin_dir, load):
    src = '''
import omni
from omni.specs import OptimizationSpec
@omni.hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(name="noimpl", stage="cache", summary="x", lossless=True)
'''
    plugin_dir("omni-plugin-noimpl", "0.1", {"noimpl": "noimpl_mod"}, {"noimpl_mod": src})
    rec = load().plugins[0]
    assert rec.status == "invalid" and "no impl" in rec.error


@pytest.mark.parametrize(
    "environ, expected",
    [
        ({"OMNI_DISABLE_PLUGINS": "omni-plugin-boom"}, "disabled by OMNI_DISABLE_PLUGINS"),
        ({"OMNI_DISABLE_PLUGINS": "omni_plugin_boom"}, "disabled by OMNI_DISABLE_PLUGINS"),
        ({"OMNI_DISABLE_PLUGINS": "boom"}, "disabled by OMNI_DISABLE_PLUGINS"),
        ({"OMNI_LOAD_PLUGINS": "ok"}, "not in OMNI_LOAD_PLUGINS"),
        ({"OMNI_LOAD_PLUGINS": ""}, "not in OMNI_LOAD_PLUGINS"),
    ],
)
def test_disabling_happens_before_import(plugin_dir, load, opt_src, environ, expected):
    plugin_dir("omni-plugin-boom", "0.1", {"boom": "boom_mod"}, {"boom_mod": "raise RuntimeError('imported!')\n"})
    plugin_dir("omni-plugin-ok", "0.1", {"ok": "ok_mod"}, {"ok_mod": opt_src("ok_opt", "ok_mod")})
    reg = load(selection=Selection.from_env(environ))
    boom = next(p for p in reg.plugins if p.name == "boom")
    assert boom.status == "disabled" and boom.error == expected  # never imported, so never failed
    ok = next(p for p in reg.plugins if p.name == "ok")
    assert ok.status == ("disabled" if environ.get("OMNI_LOAD_PLUGINS") == "" else "active")


def test_no_plugins_flag_disables_everything(plugin_dir, load, opt_src):
    plugin_dir("omni-plugin-ok", "0.1", {"ok": "ok_mod"}, {"ok_mod": opt_src("ok_opt", "ok_mod")})
    reg = load(selection=Selection.from_env({}, no_plugins=True))
    assert reg.plugins[0].status == "disabled" and not reg.optimizations


def test_strict_mode_raises_on_any_problem(plugin_dir, load):
    plugin_dir("omni-plugin-boom", "0.1", {"boom": "boom_mod"}, {"boom_mod": "raise RuntimeError('kaput')\n"})
    with pytest.raises(PluginError, match=r"plugin 'boom' \(omni-plugin-boom 0.1\) failed: import raised"):
        load(strict=True)


def test_order_is_deterministic_not_lifo(plugin_dir, load, opt_src):
    for name in ("zeta", "alpha", "mid"):
        plugin_dir(f"omni-plugin-{name}", "0.1", {name: f"{name}_mod"}, {f"{name}_mod": opt_src(f"{name}_opt", f"{name}_mod")})
    reg = load()
    assert [p.name for p in reg.plugins] == ["alpha", "mid", "zeta"]
    assert list(reg.optimizations) == ["alpha_opt", "mid_opt", "zeta_opt"]


def test_model_naming_unknown_family_is_dropped_with_warning(plugin_dir, load):
    src = '''
import omni
from omni.specs import ModelSpec
@omni.hookimpl
def omni_register_models():
    yield ModelSpec(name="tiny-ghost", family="ghost", summary="x", build="m:f")
'''
    plugin_dir("omni-plugin-ghost", "0.1", {"ghost": "ghost_mod"}, {"ghost_mod": src})
    reg = load()
    assert not reg.models and any("unknown family 'ghost'" in w for w in reg.warnings)
