"""The plugin manager: isolation, validation, clashes, disabling, provenance, strict mode."""

import pytest

from omni.errors import PluginError
from omni.plugins import Selection
from omni.registry import ContestedName


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


def test_name_clash_is_contested_never_settled_by_order(plugin_dir, load, opt_src):
    plugin_dir("omni-plugin-aaa", "1.0", {"aaa": "aaa_mod"}, {"aaa_mod": opt_src("same_name", "aaa_mod")})
    plugin_dir("omni-plugin-bbb", "2.0", {"bbb": "bbb_mod"}, {"bbb_mod": opt_src("same_name", "bbb_mod")})
    reg = load()
    assert {p.name: p.status for p in reg.plugins} == {"aaa": "active", "bbb": "active"}
    with pytest.raises(ContestedName) as err:
        reg.optimization("same_name")
    message = str(err.value)
    assert "omni-plugin-aaa 1.0" in message and "omni-plugin-bbb 2.0" in message and "OMNI_DISABLE_PLUGINS" in message
    assert "same_name" not in reg.optimizations
    assert any("same_name" in p and "omni-plugin-bbb 2.0" in p for p in reg.problems)
    # the user chooses by disabling one: then the name resolves to the other, whatever the sort order
    reg = load(selection=Selection.from_env({"OMNI_DISABLE_PLUGINS": "aaa"}))
    assert reg.optimization("same_name").plugin.distribution == "omni-plugin-bbb"


def test_impostor_of_a_bundled_name_makes_the_name_unusable(plugin_dir, load, fam_src):
    """A third party declaring ``flux`` under an entry-point name sorting first: ``flux`` and every model of
    it fail with one line naming both distributions, instead of silently resolving to the impostor."""
    from omni.resolve import resolve_model

    plugin_dir("acme-impostor", "9.9", {"aaa": "imp_mod"}, {"imp_mod": fam_src("flux", pipeline="FluxPipeline")})
    plugin_dir("omni-family-flux-real", "0.1", {"flux": "real_mod"}, {"real_mod": fam_src("flux", pipeline="FluxPipeline")})
    reg = load()
    with pytest.raises(ContestedName, match="acme-impostor 9.9.*omni-family-flux-real 0.1"):
        resolve_model("flux", reg)
    with pytest.raises(ContestedName, match="pipeline class 'FluxPipeline'"):
        reg.family_for_pipeline("FluxPipeline")


def test_same_entry_point_name_in_two_distributions_loads_both(plugin_dir, load, opt_src):
    plugin_dir("omni-plugin-one", "1.0", {"shared": "one_mod"}, {"one_mod": opt_src("one_opt", "one_mod")})
    plugin_dir("omni-plugin-two", "1.0", {"shared": "two_mod"}, {"two_mod": opt_src("two_opt", "two_mod")})
    reg = load()
    assert sorted(p.name for p in reg.plugins) == ["shared", "shared@omni-plugin-two"]
    assert {"one_opt", "two_opt"} <= set(reg.optimizations)


def test_system_exit_at_import_is_a_failed_plugin(plugin_dir, load, opt_src):
    plugin_dir("omni-plugin-quitter", "0.1", {"quitter": "quit_mod"}, {"quit_mod": "import sys\nsys.exit(3)\n"})
    plugin_dir("omni-plugin-ok", "0.1", {"ok": "ok_mod"}, {"ok_mod": opt_src("ok_opt", "ok_mod")})
    reg = load()
    by_name = {p.name: p for p in reg.plugins}
    assert by_name["quitter"].status == "failed" and "SystemExit: 3" in by_name["quitter"].error
    assert "ok_opt" in reg.optimizations


def test_a_step_can_only_be_wrapped(plugin_dir, load):
    plain = '''
import omni
@omni.hookimpl
def omni_step(ctx, step):
    return None
'''
    wrapper = '''
import omni
@omni.hookimpl(wrapper=True)
def omni_step(ctx, step):
    return (yield)
'''
    plugin_dir("omni-plugin-plain", "0.1", {"plain": "plain_mod"}, {"plain_mod": plain})
    plugin_dir("omni-plugin-wrap", "0.1", {"wrap": "wrap_mod"}, {"wrap_mod": wrapper})
    by_name = {p.name: p for p in load().plugins}
    assert by_name["plain"].status == "invalid" and "wrapper=True" in by_name["plain"].error
    assert by_name["wrap"].status == "active"


def test_cross_plugin_findings(plugin_dir, load, opt_src, fam_src):
    plugin_dir("omni-plugin-cache", "0.1", {"cache": "cache_mod"}, {"cache_mod": opt_src("first_block_cache", "cache_mod")})
    plugin_dir("omni-family-one", "0.1", {"one": "one_mod"}, {"one_mod": fam_src(
        "one", pipeline="SharedPipeline", claims="{'first_blok_cache': omni.unsupported('typo')}")})
    plugin_dir("omni-family-two", "0.1", {"two": "two_mod"}, {"two_mod": fam_src("two", pipeline="SharedPipeline")})
    reg = load()
    findings = "\n".join(reg.findings)
    assert "claims 'first_blok_cache', which no installed plugin declares (did you mean first_block_cache?)" in findings
    assert "pipeline class SharedPipeline is claimed by families 'one' and 'two'" in findings
    with pytest.raises(ContestedName):
        reg.family_for_pipeline("SharedPipeline")


def test_optimization_without_impl_is_invalid(plugin_dir, load):
    src = '''
import omni
from omni.specs import OptimizationSpec
@omni.hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(name="noimpl", stage="cache", summary="x", lossless=True, impl=None)
'''
    plugin_dir("omni-plugin-noimpl", "0.1", {"noimpl": "noimpl_mod"}, {"noimpl_mod": src})
    rec = load().plugins[0]
    assert rec.status == "invalid" and "impl" in rec.error


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
    assert not reg.models and any("unknown family 'ghost'" in w for w in reg.findings)
