"""``OptimizationConformance``: the tests every optimization plugin should pass."""

from __future__ import annotations

import subprocess
import sys
from typing import ClassVar

import pytest


class OptimizationConformance:
    """Subclass and set ``optimization``; pytest collects the inherited tests."""

    optimization: ClassVar[str]
    run_verification: ClassVar[bool] = True  # omni's own repo verifies in tests/verified instead

    @pytest.fixture(scope="class")
    def registry(self):
        from omni.plugins import Selection, load_registry

        return load_registry(selection=Selection(), strict=False)

    def test_declaration_is_valid_and_active(self, registry):
        declared = registry.optimization(self.optimization)
        record = next(p for p in registry.plugins if p.name == declared.plugin.name)
        assert record.status == "active", record.error
        # the core's traits plus those plugins declare (OptimizationSpec.traits)
        assert declared.spec.requires_traits <= set(registry.vocabulary), \
            declared.spec.requires_traits - set(registry.vocabulary)

    def test_plugin_module_does_not_import_torch(self, registry):
        import importlib.metadata as md

        declared = registry.optimization(self.optimization)
        ep = next(e for e in md.entry_points(group="omni") if e.name == declared.plugin.name)
        code = (f"import sys, importlib; importlib.import_module({ep.value.split(':')[0]!r}); "
                "heavy = {'torch', 'diffusers', 'transformers'} & set(sys.modules); assert not heavy, heavy")
        subprocess.run([sys.executable, "-c", code], check=True)

    def test_config_keys_request_it(self, registry):
        from omni.config import resolve_config

        spec = registry.optimization(self.optimization).spec
        for key in spec.config_keys:
            if key.requires:
                continue
            if key.enables:
                assert spec.name in resolve_config(registry, {key.key: True}).requested
            elif key.when:
                assert spec.name in resolve_config(registry, {key.key: key.when[0]}).requested

    def test_supported_cells_pass_verification(self, registry):
        if not self.run_verification:
            pytest.skip("verified by tests/verified in this repository")
        from omni.environment import Environment
        from omni.specs import Support
        from omni.verify import Verifier, cells_to_verify

        cells = cells_to_verify(registry, Environment.detect(), optimization=registry.optimization(self.optimization).spec.name)
        verifier = Verifier(registry)
        for cell in cells:
            if cell.status is Support.SUPPORTED:
                result = verifier.verify(cell.model, cell.optimization, cell.status, task=cell.task)
                assert result.status == "pass", result
