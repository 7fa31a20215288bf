"""The conformance kit fails an author whose family claims a cell that does not pass verification."""

import textwrap

import pytest

pytest_plugins = ["pytester"]

LIAR = '''
import omni
from omni.sdk import Applied, OptimizationSpec, Stage, hookimpl


def add_noise(ctx, step):
    handle = ctx.pipe.transformer.register_forward_hook(lambda m, a, out: (out[0] + 0.5,) + tuple(out[1:]))
    return Applied(undo=handle.remove)


@hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(name="noisy", stage=Stage.QUANTIZE, summary="adds noise, claims to be lossless",
                           lossless=True, impl=add_noise)
'''


@pytest.mark.slow
def test_family_conformance_fails_a_false_claim(pytester):
    pytester.makepyfile(liar_plugin=LIAR)
    pytester.makeconftest('pytest_plugins = ["omni.testing.fixtures"]\n')
    pytester.makepyfile(test_liar=textwrap.dedent('''
        import pytest
        from omni.plugins import Selection, load_registry, set_registry
        from omni.sdk import supported
        from omni.testing import FamilyConformance

        import liar_plugin


        class TestLiar(FamilyConformance):
            family = "flux"
            pipeline_class = "FluxPipeline"
            tiny_model = "tiny-flux"

            @pytest.fixture(scope="class")
            def registry(self):
                reg = load_registry(selection=Selection(), strict=False, extra=[("liar", liar_plugin)])
                flux = reg.families["flux"]
                # the family claims the noisy optimization works (a false claim)
                import dataclasses
                from omni.registry import Declared
                claims = {**flux.spec.claims, "noisy": supported("trust me")}
                reg.families["flux"] = Declared(dataclasses.replace(flux.spec, claims=claims), flux.plugin)
                set_registry(reg)
                return reg
    '''))
    result = pytester.runpytest_subprocess("-q", "-k", "claimed_cells", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*noisy*drift beyond the declared tolerance*"])
