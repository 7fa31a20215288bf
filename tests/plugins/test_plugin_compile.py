"""compile: wiring checks that need no compilation (the compiled run itself is in tests/verified)."""

import omni
from omni.testing import OptimizationConformance


class TestCompile(OptimizationConformance):
    optimization = "compile"
    run_verification = False


def test_enforce_eager_disables_compile():
    result = omni.run("tiny-flux", config={"compile": True, "enforce_eager": True})
    res = result.report.result("compile")
    assert res.status == "skipped" and res.cell == "disabled"
    assert any("disabled by enforce_eager" in n for n in result.report.notes)


def test_fullgraph_is_refused_over_cache_hooks():
    result = omni.run("tiny-flux", optimize=["teacache", "compile"], sets={"compile.fullgraph": "true"})
    assert result.report.result("teacache").status == "applied"
    res = result.report.result("compile")
    assert res.status == "skipped" and "fullgraph=True cannot trace through the hooks of teacache" in res.reason


def test_eager_backend_regional_compile_is_exact():
    base = omni.run("tiny-flux").images
    result = omni.run("tiny-flux", optimize=["compile"], sets={"compile.backend": "eager"})
    details = result.report.result("compile").details
    assert details["how"] == ["compile_repeated_blocks"] and details["compiled_modules"] == 2
    assert abs(result.images - base).max() <= 1e-6


def test_undo_removes_the_compiled_wrappers_and_the_raised_recompile_limit():
    import torch

    from omni.testing.undo import check_undo

    limit = torch._dynamo.config.recompile_limit
    base, compiled, pipe = check_undo("tiny-flux", ["compile"], sets={"compile.backend": "eager"})
    assert abs(compiled - base).max() <= 1e-6
    assert not any("_compiled_call_impl" in vars(m) for m in pipe.transformer.modules())
    assert torch._dynamo.config.recompile_limit == limit
