import sys

import pytest

from omni.testing.fake_dist import fake_dist

OPT_MODULE = '''
import omni
from omni.specs import OptimizationSpec, Stage, ConfigKey, Option, Needs

@omni.hookimpl
def omni_register_optimizations():
    yield OptimizationSpec(name="{name}", stage=Stage.{stage}, summary="test optimization", lossless=True,
                           impl="{module}:apply", exclusive_group={group!r}, order={order},
                           requires_traits={traits!r}, needs=Needs(**{needs!r}))

def apply(ctx, step):
    raise NotImplementedError
'''

FAMILY_MODULE = '''
import omni
from omni.specs import FamilyFacts, FamilySpec

@omni.hookimpl
def omni_register_families():
    yield FamilySpec(name="{name}", summary="test family", pipelines=("{pipeline}",),
                     hub_patterns=("acme-ai/{name}-*",),
                     facts=FamilyFacts(denoiser="{denoiser}", denoiser_components=("transformer",), modality="image",
                                       tasks=("t2i",), guidance="cfg", block_attrs={blocks!r}),
                     claims={claims})
'''


def opt_source(name, module, stage="CACHE", group=None, order=100, traits=(), needs=None):
    return OPT_MODULE.format(name=name, module=module, stage=stage, group=group, order=order,
                             traits=set(traits) or set(), needs=needs or {})


def family_source(name, pipeline="AcmePipeline", denoiser="dit", blocks=("transformer_blocks",), claims="{}"):
    return FAMILY_MODULE.format(name=name, pipeline=pipeline, denoiser=denoiser, blocks=tuple(blocks), claims=claims)


@pytest.fixture
def plugin_dir(tmp_path, monkeypatch):
    """A folder on sys.path holding fake distributions; returns a ``add(dist, version, eps, modules)``."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    added = []

    def add(dist, version, entry_points, modules):
        added.extend(modules)
        return fake_dist(root, dist, version, entry_points, modules)

    add.root = root
    yield add
    for name in added:
        sys.modules.pop(name, None)


@pytest.fixture
def load(plugin_dir):
    """Load a registry from the fake distributions only."""
    from omni.plugins import Selection, load_registry

    def _load(selection=None, strict=False):
        return load_registry(selection=selection or Selection(), strict=strict, path=[str(plugin_dir.root)])

    return _load


@pytest.fixture
def opt_src():
    return opt_source


@pytest.fixture
def fam_src():
    return family_source
