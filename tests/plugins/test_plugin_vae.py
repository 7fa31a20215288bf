import numpy as np

import omni
from omni.testing import OptimizationConformance
from omni.testing.undo import check_undo


class TestVaeSlicing(OptimizationConformance):
    optimization = "vae_slicing"
    run_verification = False


class TestVaeTiling(OptimizationConformance):
    optimization = "vae_tiling"
    run_verification = False


def test_tiling_really_tiles_at_a_size_above_the_tile(monkeypatch):
    from diffusers import AutoencoderKL

    calls = []
    original = AutoencoderKL.tiled_decode

    def spy(self, *a, **k):
        calls.append(1)
        return original(self, *a, **k)

    monkeypatch.setattr(AutoencoderKL, "tiled_decode", spy)
    result = omni.run("tiny-flux", optimize=["vae_tiling"], sets={"vae_tiling.tile_size": 32})
    assert result.report.result("vae_tiling").status == "applied" and calls
    assert np.isfinite(result.images).all()


def test_slicing_matches_batched_decode():
    base = omni.run("tiny-flux", num_images_per_prompt=2).images
    sliced = omni.run("tiny-flux", optimize=["vae_slicing"], num_images_per_prompt=2).images
    assert base.shape[0] == 2
    np.testing.assert_allclose(base, sliced, atol=1e-5)  # batched vs per-sample conv kernels differ ~4e-6


def test_undo_restores_the_untiled_unsliced_vae():
    base, tiled, pipe = check_undo("tiny-flux", ["vae_tiling", "vae_slicing"], sets={"vae_tiling.tile_size": 48},
                                   num_images_per_prompt=2)
    assert not np.array_equal(base, tiled)  # tiling really changed the decode before it was undone
    assert not pipe.vae.use_tiling and not pipe.vae.use_slicing
    assert pipe.vae.tile_sample_min_size == pipe.vae.config.sample_size != 48
