"""Matrix cells (supported/unsupported/untested/unavailable/disabled) and plan()."""

import pytest

from omni.environment import Environment
from omni.errors import UsageError
from omni.matrix import CompatMatrix
from omni.specs import Support


@pytest.fixture
def registry(plugin_dir, load, opt_src, fam_src):
    plugin_dir("omni-family-acme", "0.1", {"acme": "acme_mod"}, {
        "acme_mod": fam_src("acme", claims="{'cache_b': omni.unsupported('acme blocks return tuples')}")})
    plugin_dir("omni-family-unet", "0.1", {"unetfam": "unetfam_mod"}, {
        "unetfam_mod": fam_src("unetfam", pipeline="UnetPipeline", denoiser="unet", blocks=())})
    src = {
        "cache_a": opt_src("cache_a", "opts_a", group="cache", traits=("denoiser:dit", "blocks:list")),
        "cache_b": opt_src("cache_b", "opts_b", group="cache"),
        "quant": opt_src("quant", "opts_q", stage="QUANTIZE", order=50),
        "fuse": opt_src("fuse", "opts_f", stage="QUANTIZE", order=10),
        "gpu_only": opt_src("gpu_only", "opts_g", stage="PLACE", needs={"accelerator": True}),
        "fp8": opt_src("fp8", "opts_8", stage="QUANTIZE", needs={"min_compute_capability": (8, 9)}),
        "needs_pkg": opt_src("needs_pkg", "opts_p", stage="DECODE", needs={"packages": ("surely-not-installed>=1",)}),
    }
    mods = {"cache_a": "opts_a", "cache_b": "opts_b", "quant": "opts_q", "fuse": "opts_f", "gpu_only": "opts_g",
            "fp8": "opts_8", "needs_pkg": "opts_p"}
    for name, source in src.items():
        plugin_dir(f"omni-plugin-{name}", "0.1", {name: mods[name]}, {mods[name]: source})
    return load()


def test_untested_by_traits_for_third_party_family(registry):
    m = CompatMatrix(registry)
    cell = m.cell("acme", "cache_a")
    assert cell.status is Support.UNTESTED and "no plugin claims" in cell.reasons[0]


def test_missing_trait_is_unsupported_with_reason(registry):
    cell = CompatMatrix(registry).cell("unetfam", "cache_a")
    assert cell.status is Support.UNSUPPORTED
    assert "lacks trait(s) blocks:list, denoiser:dit" in cell.reasons[0]
    assert cell.declared_by[0].distribution == "omni-plugin-cache_a"


def test_family_exclusion_is_unsupported_with_provenance(registry):
    cell = CompatMatrix(registry).cell("acme", "cache_b")
    assert cell.status is Support.UNSUPPORTED and cell.reasons == ("acme blocks return tuples",)
    assert cell.declared_by[0].distribution == "omni-family-acme"



@pytest.mark.parametrize(
    "caps, opt, status, reason",
    [
        ((), "gpu_only", Support.UNAVAILABLE, "needs a CUDA accelerator; none found"),
        (((9, 0),), "gpu_only", Support.UNTESTED, None),
        (((8, 0),), "fp8", Support.UNAVAILABLE, "needs CUDA compute capability >= 8.9; this GPU has 8.0"),
        (((8, 9),), "fp8", Support.UNTESTED, None),
        (((9, 0),), "needs_pkg", Support.UNAVAILABLE, "package surely-not-installed is not installed"),
    ],
)
def test_environment_decides_availability(registry, caps, opt, status, reason):
    cell = CompatMatrix(registry, env=Environment(cuda_capabilities=caps)).cell("acme", opt)
    assert cell.status is status
    if reason:
        assert any(reason in r for r in cell.reasons), cell.reasons


def test_published_view_has_no_environment_but_notes_needs(registry):
    cell = CompatMatrix(registry, env=None).cell("acme", "fp8")
    assert cell.status is Support.UNTESTED and "needs CUDA compute capability >= 8.9" in cell.reasons


def test_disabled_cells(registry):
    m = CompatMatrix(registry, disabled=["quant"])
    assert m.cell("acme", "quant").status is Support.DISABLED
    with pytest.raises(UsageError, match="unknown optimization 'qaunt'.*did you mean quant"):
        CompatMatrix(registry, disabled=["qaunt"])


def test_plan_orders_skips_and_resolves_conflicts(registry):
    m = CompatMatrix(registry, env=Environment())
    plan = m.plan("acme", ["quant", "cache_a", "fuse", "cache_b", "gpu_only"])
    assert plan.names() == ["fuse", "quant", "cache_a"]  # quantize (order 10, 50) before cache
    skipped = {s.name: s for s in plan.skipped}
    assert skipped["cache_b"].status == "unsupported"
    assert skipped["gpu_only"].status == "unavailable"


def test_plan_first_requested_of_exclusive_group_wins(registry):
    m = CompatMatrix(registry)
    plan = m.plan("unetfam", ["cache_b", "cache_a"])
    assert plan.names() == ["cache_b"]
    assert plan.skipped[0].name == "cache_a"  # also missing traits; conflict checked only for runnable ones
    plan = m.plan("acme", ["cache_a", "cache_b"])
    assert plan.names() == ["cache_a"]


def test_conflicts_listing_and_unknown_names(registry):
    m = CompatMatrix(registry)
    assert ("cache_a", "cache_b", "cache_a and cache_b are both cache methods; only one can be active") in m.conflicts()
    with pytest.raises(UsageError, match="unknown optimization 'cache_c'"):
        m.plan("acme", ["cache_c"])
    with pytest.raises(UsageError, match="unknown family 'acmee'.*did you mean acme"):
        m.cell("acmee", "quant")


def test_markdown_renders_both_tables(registry):
    from omni.docs_tables import matrix_markdown

    text = matrix_markdown(CompatMatrix(registry))
    assert "## Families × optimizations" in text and "## Optimizations × optimizations" in text
    assert "acme blocks return tuples" in text


def test_a_supported_claim_never_overrides_a_missing_trait(plugin_dir, load, opt_src, fam_src):
    plugin_dir("omni-family-acme", "0.1", {"acme": "acme_mod"}, {
        "acme_mod": fam_src("acme", claims="{'needs_unet': omni.supported('calibrated for acme')}")})
    plugin_dir("omni-plugin-needs_unet", "0.1", {"needs_unet": "nu_mod"}, {
        "nu_mod": opt_src("needs_unet", "nu_mod", traits=("denoiser:unet",))})
    reg = load()
    cell = CompatMatrix(reg).cell("acme", "needs_unet")
    assert cell.status is Support.UNSUPPORTED and "acme lacks trait(s) denoiser:unet" in cell.reasons[0]
    assert any("acme × needs_unet is claimed supported, but acme lacks denoiser:unet" in f for f in reg.findings)
