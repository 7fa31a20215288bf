"""Test helpers and conformance suites for plugin authors.

Opt in from your test suite (not autoloaded)::

    # conftest.py
    pytest_plugins = ["omni.testing.fixtures"]

    # test_acme.py
    from omni.testing import FamilyConformance

    class TestAcme(FamilyConformance):
        family = "acme"
        pipeline_class = "AcmePipeline"
        tiny_model = "tiny-acme"
        hub_ids = ("acme-ai/acme-1b",)
"""

from omni.testing.family import FamilyConformance, generate
from omni.testing.optimization import OptimizationConformance

__all__ = ["FamilyConformance", "OptimizationConformance", "generate"]
