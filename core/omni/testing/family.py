"""``FamilyConformance``: the tests every model-family plugin should pass (CPU, offline)."""

from __future__ import annotations

import json
from typing import Any, ClassVar

import pytest


def generate(model: str, *, seed: int = 0, prompt: str = "a red circle on a blue background", **overrides: Any):
    """Run a short generation of a named model directly with diffusers, on its own pipeline's task (with that
    task's ``task_generation``, and the synthetic inputs ``omni verify`` uses when the task needs one, e.g. an
    image-to-video pipeline's image; no prompt for a pipeline that takes none); returns a float numpy array
    (images: (N, H, W, C); video: (N, F, H, W, C))."""
    import numpy as np
    import torch
    from diffusers import DiffusionPipeline

    from omni.behaviour import resolve
    from omni.plugins import get_registry
    from omni.runtime.inputs import read_inputs
    from omni.runtime.tasks import base_task, input_kwargs
    from omni.verify import run_inputs

    registry = get_registry()
    spec = registry.models[model.replace("-", "_")].spec
    family = registry.family(spec.family).spec
    pipe = DiffusionPipeline.from_pretrained(str(resolve(spec.build)()), local_files_only=True)
    pipe.set_progress_bar_config(disable=True)
    task = base_task(family, pipe)
    kwargs = {**dict(spec.default_generation), **dict(spec.task_generation.get(task, {})), **overrides}
    fields = run_inputs(family, task, kwargs)
    inputs = read_inputs(image=fields.get("image"), mask=fields.get("mask"), video=fields.get("video"))
    kwargs = {**input_kwargs(pipe, inputs), **kwargs}
    text = {} if "prompt" in fields else {"prompt": prompt}
    out = pipe(**text, generator=torch.Generator("cpu").manual_seed(seed), output_type="np", **kwargs)
    arr = out.frames if hasattr(out, "frames") else out.images
    return np.asarray(arr, dtype=np.float32)


class FamilyConformance:
    """Subclass and set the class attributes; pytest collects the inherited tests."""

    family: ClassVar[str]
    pipeline_class: ClassVar[str]
    tiny_model: ClassVar[str | None] = None
    hub_ids: ClassVar[tuple[str, ...]] = ()
    expected_shape: ClassVar[tuple[int, ...] | None] = None  # of generate(tiny_model)

    @pytest.fixture(scope="class")
    def registry(self):
        from omni.plugins import Selection, load_registry

        return load_registry(selection=Selection(), strict=False)

    def test_declaration_is_valid_and_active(self, registry):
        declared = registry.family(self.family)
        record = next(p for p in registry.plugins if p.name == declared.plugin.name)
        assert record.status == "active", record.error
        traits = registry.traits(self.family)
        assert traits <= set(registry.vocabulary), traits - set(registry.vocabulary)
        assert self.pipeline_class in declared.spec.pipelines
        mine = [f for f in registry.findings if f"'{self.family}'" in f or f.startswith(f"{self.family} ")]
        assert not mine, mine

    def test_recognised_from_model_index_only(self, registry, tmp_path):
        from omni.resolve import resolve_model

        (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": self.pipeline_class}))
        resolved = resolve_model(str(tmp_path), registry)
        assert (resolved.family, resolved.kind, resolved.pipeline_class) == (self.family, "local", self.pipeline_class)

    def test_non_matching_folder_is_not_claimed(self, registry, tmp_path):
        """A folder of another pipeline class never resolves to this family (it is refused, or taken by a
        catch-all family such as omni's generic family)."""
        from omni.errors import UnknownModelError
        from omni.resolve import resolve_model

        (tmp_path / "model_index.json").write_text(json.dumps({"_class_name": "NotADiffusersPipeline"}))
        try:
            resolved = resolve_model(str(tmp_path), registry)
        except UnknownModelError as exc:
            assert "NotADiffusersPipeline" in str(exc)
        else:
            assert resolved.family != self.family
            assert registry.family(resolved.family).spec.catch_all

    def test_hub_ids_resolve_offline(self, registry):
        from omni.resolve import resolve_model

        for hub_id in self.hub_ids:
            resolved = resolve_model(hub_id, registry)
            assert (resolved.family, resolved.kind) == (self.family, "hub"), hub_id

    def test_matrix_row_matches_family_claims(self, registry):
        from omni.matrix import CompatMatrix

        declared = registry.family(self.family)
        matrix = CompatMatrix(registry)
        for key, claim in declared.spec.claims.items():
            opt_name, _, task = key.partition("@")
            if opt_name not in registry.optimizations:
                continue  # the optimization plugin is not installed
            cell = matrix.cell(self.family, opt_name, task or None)
            if claim.status.value == "unsupported":
                assert cell.status.value == "unsupported" and claim.reason in cell.reasons
            else:
                assert cell.status.value in ("supported", "unsupported"), cell

    def test_tiny_generation_offline_deterministic(self, registry, no_network):
        import numpy as np

        if self.tiny_model is None:
            pytest.skip("family ships no tiny model")
        assert registry.models[self.tiny_model.replace("-", "_")].spec.family == self.family
        first = generate(self.tiny_model, seed=1)
        second = generate(self.tiny_model, seed=1)
        assert np.isfinite(first).all()
        if self.expected_shape is not None:
            assert first.shape == self.expected_shape
        np.testing.assert_array_equal(first, second)

    @pytest.mark.slow
    def test_claimed_cells_pass_verification(self, registry):
        """Every cell this family claims supported is proven by a real run (a false claim fails here)."""
        from omni.environment import Environment
        from omni.specs import Support
        from omni.verify import Verifier, cells_to_verify

        if self.tiny_model is None:
            pytest.skip("family ships no tiny model")
        claimed = {name for name, claim in registry.family(self.family).spec.claims.items()
                   if claim.status is Support.SUPPORTED and "@" not in name}
        cells = [c for c in cells_to_verify(registry, Environment.detect(), family=self.family, tasks=False)
                 if c.model == self.tiny_model and c.optimization in claimed and c.status is Support.SUPPORTED]
        if not cells:
            pytest.skip("no claimed cell is available on this host")
        failed = [r for r in Verifier(registry).verify_all(cells) if r.status != "pass"]
        assert not failed, failed
