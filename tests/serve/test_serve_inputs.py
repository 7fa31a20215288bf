"""Input images over HTTP: ``POST /v1/images/edits`` (OpenAI's multipart shape, through the official
client) on ``tiny-flux`` — inpaint with a mask, image-to-image without —, ``input_reference`` on
``POST /v1/videos`` for image-to-video models (``tiny-svd``, whose pipeline takes no prompt, and
``tiny-wan-i2v``), the refusal on a text-to-video model without an image task, bad uploads (400/413,
OpenAI's error body, one log line each) and the playground's image input in headless Chromium."""

from __future__ import annotations

import base64
import io
import time
import uuid

import imageio.v3 as iio
import numpy as np
import openai
import pytest
from PIL import Image
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

MASK_NOTE = "mask: RGBA with alpha read as OpenAI's convention (transparent = edit)"


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def _picture(width: int, height: int, seed: int = 0) -> Image.Image:
    return Image.fromarray((np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8))


def _openai_mask(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """OpenAI's convention: an RGBA image, transparent where the picture is to be edited."""
    mask = Image.new("RGBA", (width, height), (90, 20, 200, 255))
    mask.paste((0, 0, 0, 0), box)
    return mask


def _white_mask(width: int, height: int, box: tuple[int, int, int, int]) -> Image.Image:
    """diffusers' convention: one channel, white = repaint."""
    mask = Image.new("L", (width, height), 0)
    mask.paste(255, box)
    return mask


def _decoded(result) -> list[np.ndarray]:
    return [np.asarray(Image.open(io.BytesIO(base64.b64decode(d.b64_json)))) for d in result.data]


def _report(client, job_id: str) -> dict:
    return client.get(f"/jobs/{job_id}/trace", cast_to=object)["report"]


def _new_lines(server, before: int) -> list[str]:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and len(server.log_lines()) == before:
        time.sleep(0.05)
    return server.log_lines()[before:]


# ---------------------------------------------------------------------------- tiny-flux: /v1/images/edits
@pytest.fixture(scope="module")
def flux(start_server, tmp_path_factory):
    s = start_server("tiny-flux", tmp_path_factory.mktemp("serve-inputs-flux"), "--max-upload", "1")
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def flux_client(flux):
    return openai.OpenAI(base_url=flux.url + "/v1", api_key="unused", max_retries=0)


def test_edit_with_a_mask_inpaints_with_the_openai_client(flux_client):
    image = _png(_picture(64, 64))
    box = (16, 16, 48, 40)
    result = flux_client.images.edit(image=("in.png", image, "image/png"),
                                     mask=("mask.png", _png(_openai_mask(64, 64, box)), "image/png"),
                                     prompt="a red circle", size="64x48", n=2, extra_body={"seed": 5})
    outputs = _decoded(result)
    assert [o.shape for o in outputs] == [(48, 64, 3), (48, 64, 3)]
    report = _report(flux_client, result.model_extra["job_id"])
    gen = report["generation"]
    assert gen["task"] == "inpaint" and gen["pipeline"] == "FluxInpaintPipeline"
    assert gen["image"] == {"size": [64, 64], "mode": "RGB"} and gen["mask"]["size"] == [64, 64]
    assert any(n.startswith(MASK_NOTE) for n in report["notes"]), report["notes"]
    assert "image: height 64 resized to 48 by the pipeline" in report["notes"]

    # the conversion is real: OpenAI's transparent box and diffusers' white box repaint the same pixels
    # (same seed -> the same output), the inverted mask does not
    same = flux_client.images.edit(image=image, mask=_png(_white_mask(64, 64, box)), prompt="a red circle",
                                   size="64x48", n=2, extra_body={"seed": 5})
    assert all(np.array_equal(a, b) for a, b in zip(outputs, _decoded(same), strict=True))
    notes = _report(flux_client, same.model_extra["job_id"])["notes"]
    assert "mask: L without alpha read as white = repaint" in notes
    inverted = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
    inverted.paste((0, 0, 0, 255), box)
    other = flux_client.images.edit(image=image, mask=_png(inverted), prompt="a red circle", size="64x48", n=2,
                                    extra_body={"seed": 5})
    assert not np.array_equal(outputs[0], _decoded(other)[0])


def test_edit_without_a_mask_is_image_to_image(flux_client, flux):
    # the output follows the input's size ("auto"); strength and url responses go through as on generations
    result = flux_client.images.edit(image=_png(_picture(48, 32, seed=1).convert("RGBA")), prompt="a blue square",
                                     size="auto", response_format="url",
                                     extra_body={"strength": 0.6, "num_inference_steps": 3, "seed": 2})
    url = result.data[0].url
    assert url.startswith(flux.url + "/v1/jobs/")
    png = flux.call("GET", url[len(flux.url):])
    assert png.status == 200 and Image.open(io.BytesIO(png.body)).size == (48, 32)
    job = flux_client.get(f"/jobs/{result.model_extra['job_id']}", cast_to=object)
    assert job["request"]["task"] == "i2i" and job["request"]["strength"] == 0.6
    report = _report(flux_client, job["id"])
    assert report["generation"]["pipeline"] == "FluxImg2ImgPipeline"
    assert "image: RGBA image converted to RGB (alpha dropped)" in report["notes"]
    assert len(report["timings"]["steps"]) >= 1


@pytest.mark.parametrize("case", ["not_an_image", "mask_size", "mask_nothing_to_edit", "path_not_file",
                                  "too_large", "far_too_large", "generations_image"])
def test_bad_uploads_are_refused_with_one_log_line(flux, flux_client, case):
    image = _png(_picture(64, 64))
    status, param = 400, None
    kwargs = {"image": image, "prompt": "x"}
    if case == "not_an_image":
        kwargs["image"], param = b"%PDF-1.4 this is not a picture", "image"
    elif case == "mask_size":
        kwargs["mask"], param = _png(_white_mask(32, 32, (0, 0, 8, 8))), "mask"
    elif case == "mask_nothing_to_edit":  # an alpha channel without a transparent pixel marks no edit area
        kwargs["mask"], param = _png(Image.new("RGBA", (64, 64), (255, 255, 255, 255))), "mask"
    elif case in ("too_large", "far_too_large"):  # --max-upload 1 (MiB): drained and refused / cut off at once
        size = (3 * 2**20) // 2 if case == "too_large" else 3 * 2**20
        kwargs["image"], status = image + bytes(size), 413
    before = len(flux.log_lines())
    if case == "path_not_file":  # a request field never names a file the server reads
        reply = flux.call("POST", "/v1/images/edits", {"prompt": "x", "image": "/etc/hostname"})
        status, param, body = reply.status, "image", reply.json()["error"]
        assert status == 400
    elif case == "generations_image":
        with pytest.raises(openai.BadRequestError) as caught:
            flux_client.images.generate(prompt="x", extra_body={"image": "in.png"})
        body, param = caught.value.body, "image"
        assert "/v1/images/edits" in body["message"]
    else:
        with pytest.raises(openai.APIStatusError) as caught:
            flux_client.images.edit(**kwargs)
        assert caught.value.status_code == status
        body = caught.value.body
    assert set(body) == {"message", "type", "param", "code"} and body["param"] == param, body
    assert body["type"] == "invalid_request_error"
    if status == 413:
        assert body["code"] == "over_limit" and "--max-upload" in body["message"]
    lines = _new_lines(flux, before)
    assert len(lines) == 1 and f" {status} " in lines[0], lines
    assert "Traceback" not in flux.log.read_text()
    assert flux.call("GET", "/health/ready").status == 200


# ---------------------------------------------------------------------------- /v1/videos input_reference
def _video_done(client, video_id: str, timeout: float = 180):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = client.videos.retrieve(video_id)
        if video.status in ("completed", "failed", "cancelled"):
            return video
        time.sleep(0.1)
    raise AssertionError(f"{video_id} still {video.status}")


@pytest.fixture(scope="module")
def svd(start_server, tmp_path_factory):
    s = start_server("tiny-svd", tmp_path_factory.mktemp("serve-inputs-svd"))
    yield s
    assert s.stop() == 0


def _image_to_video(server, prompt: str, frames: int, pipeline: str) -> None:
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    video = client.videos.create(prompt=prompt, input_reference=("ref.png", _png(_picture(48, 32)), "image/png"),
                                 extra_body={"num_inference_steps": 2, "num_frames": frames, "seed": 1})
    done = _video_done(client, video.id)
    assert done.status == "completed" and done.size == "48x32", done
    shape = iio.imread(client.videos.download_content(video.id).read(), extension=".mp4").shape
    assert shape[:3] == (frames, 32, 48)
    gen = _report(client, video.id)["generation"]
    assert gen["task"] == "i2v" and gen["pipeline"] == pipeline and gen["prompt"] == prompt
    assert gen["image"] == {"size": [48, 32], "mode": "RGB"}


def test_image_to_video_without_a_prompt_on_svd(svd):
    _image_to_video(svd, "", 4, "StableVideoDiffusionPipeline")  # the server sends no default prompt
    client = openai.OpenAI(base_url=svd.url + "/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:  # a prompt it cannot take is refused, not dropped
        client.videos.create(prompt="a cat", input_reference=_png(_picture(48, 32)))
    assert caught.value.body["param"] == "prompt"
    with pytest.raises(openai.BadRequestError) as caught:  # svd needs the image
        client.videos.create(prompt="")
    assert caught.value.body["param"] == "input_reference", caught.value.body


def test_image_to_video_with_a_prompt_on_wan(start_server, tmp_path_factory):
    server = start_server("tiny-wan-i2v", tmp_path_factory.mktemp("serve-inputs-wan-i2v"))
    _image_to_video(server, "a red circle moving", 9, "WanImageToVideoPipeline")
    assert server.stop() == 0


def test_text_to_video_model_without_an_image_task_names_input_reference(start_server, tmp_path_factory):
    server = start_server("tiny-animatediff", tmp_path_factory.mktemp("serve-t2v"))
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)
    before = len(server.log_lines())
    with pytest.raises(openai.BadRequestError) as caught:
        client.videos.create(prompt="a red circle", input_reference=_png(_picture(32, 32)))
    body = caught.value.body
    assert body["param"] == "input_reference" and "t2v, v2v" in body["message"], body
    assert len(_new_lines(server, before)) == 1
    assert server.stop() == 0


# ---------------------------------------------------------------------------- playground
def test_playground_inpaints_an_uploaded_image(browser, flux, flux_client, tmp_path):
    image, mask = tmp_path / "in.png", tmp_path / "mask.png"
    image.write_bytes(_png(_picture(48, 32)))
    mask.write_bytes(_png(_openai_mask(48, 32, (8, 8, 40, 24))))
    prompt = f"a green triangle {uuid.uuid4().hex[:6]}"
    browser.get(flux.url + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda b: "tiny-flux" in b.find_element(By.ID, "model").text)
    assert browser.find_element(By.ID, "image").is_displayed() and browser.find_element(By.ID, "mask").is_displayed()
    browser.find_element(By.ID, "prompt").clear()
    browser.find_element(By.ID, "prompt").send_keys(prompt)
    browser.find_element(By.ID, "image").send_keys(str(image))
    wait.until(lambda b: b.find_element(By.ID, "width").get_attribute("value") == "48")  # the size follows the image
    browser.find_element(By.ID, "mask").send_keys(str(mask))
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: b.execute_script(
        "const img = document.getElementById('result'); return img && img.complete && img.naturalWidth > 0;"))
    assert browser.execute_script("const img = document.getElementById('result'); "
                                  "return [img.naturalWidth, img.naturalHeight];") == [48, 32]
    assert browser.find_element(By.ID, "status").text.startswith("completed in")
    [job] = [j for j in flux_client.get("/jobs?limit=20", cast_to=object)["data"] if j["request"]["prompt"] == prompt]
    assert job["request"]["task"] == "inpaint" and job["request"]["mask"]["size"] == [48, 32]
    assert any(n.startswith(MASK_NOTE) for n in _report(flux_client, job["id"])["notes"])
    logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logs, logs


def test_playground_image_to_video_without_a_prompt(browser, svd, tmp_path):
    image = tmp_path / "first.png"
    image.write_bytes(_png(_picture(40, 24, seed=4)))
    browser.get(svd.url + "/")
    wait = WebDriverWait(browser, 120)
    wait.until(lambda b: "tiny-svd" in b.find_element(By.ID, "model").text)
    assert not browser.find_element(By.ID, "prompt").is_displayed()  # StableVideoDiffusionPipeline takes none
    assert not browser.find_element(By.ID, "mask").is_displayed()  # svd has no inpaint task
    browser.find_element(By.ID, "image").send_keys(str(image))
    wait.until(lambda b: b.find_element(By.ID, "width").get_attribute("value") == "40")
    browser.find_element(By.ID, "generate").click()
    wait.until(lambda b: b.find_element(By.ID, "status").text.startswith(("completed in", "failed")))
    assert browser.find_element(By.ID, "status").text.startswith("completed in")
    assert browser.find_element(By.ID, "result").tag_name == "video"
    job_id = browser.find_element(By.ID, "status").text.rsplit("(", 1)[1].rstrip(")")
    job = svd.call("GET", f"/v1/jobs/{job_id}").json()
    assert job["request"]["task"] == "i2v" and job["request"]["prompt"] == "" and job["request"]["image"]["size"] == [40, 24]
    assert job["artifacts"][0]["media_type"] == "video/mp4" and job["artifacts"][0]["width"] == 40
    logs = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert not logs, logs
