"""The shipped, trained `shapes` model: offline load, a short generation that follows the prompt's colours."""


import pytest

import omni
from omni_model_shapes import WEIGHTS
from omni_model_shapes.checker import check, score
from omni_model_shapes.data import TRIPLES, caption, render


def test_weights_ship_inside_the_package_and_stay_small():
    files = [p for p in WEIGHTS.rglob("*") if p.is_file()]
    assert (WEIGHTS / "model_index.json").is_file()
    assert sum(p.stat().st_size for p in files) <= 20 * 2**20
    assert all(p.suffix != ".bin" for p in files)  # safetensors only


def test_checker_is_exact_on_rendered_scenes():
    import random

    rng = random.Random(1)
    prompts = [caption(*rng.choice(TRIPLES)) for _ in range(60)]
    images = []
    for p in prompts:
        fg, shape, bg = p.split()[1], p.split()[2], p.split()[5]
        images.append(render(fg, shape, bg, rng))
    assert score(images, prompts)["all"] == 1.0


@pytest.mark.parametrize("prompt, seed", [("a red circle on a blue background", 0),
                                          ("a yellow square on a black background", 1),
                                          ("a white triangle on a green background", 2)])
def test_short_generation_offline_follows_the_colours(no_network, prompt, seed):
    result = omni.run("shapes", prompt=prompt, seed=seed, num_inference_steps=8)
    verdict = check(result.images[0])
    _, fg, _, _, _, bg, _ = prompt.split()
    assert (verdict.fg, verdict.bg) == (fg, bg), verdict
    assert result.report.family == "flux"
