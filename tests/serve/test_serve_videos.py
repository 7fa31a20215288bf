"""``omni serve tiny-wan``: video jobs through the official client's ``videos`` API (OpenAI's shape),
vLLM-Omni's form fields (multipart and urlencoded), list/retrieve/content/delete."""

from __future__ import annotations

import time
import urllib.parse

import imageio.v3 as iio
import openai
import pytest


@pytest.fixture(scope="module")
def server(start_server, tmp_path_factory):
    s = start_server("tiny-wan", tmp_path_factory.mktemp("serve-wan"))
    yield s
    assert s.stop() == 0


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def _poll(client, video_id, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        video = client.videos.retrieve(video_id)
        if video.status in ("completed", "failed"):
            return video
        time.sleep(0.1)
    raise AssertionError(f"{video_id} still {video.status}")


def _mp4(data: bytes):
    assert data[4:8] == b"ftyp", data[:16]
    return iio.imread(data, extension=".mp4")


def test_openai_videos_api(client, server):
    assert hasattr(client, "videos")
    video = client.videos.create(prompt="a red circle", seconds="1", size="32x32", extra_body={"seed": 1})
    assert video.object == "video" and video.status in ("queued", "in_progress") and video.id.startswith("job_")
    done = _poll(client, video.id)
    assert done.status == "completed" and done.progress == 100 and done.size == "32x32", done
    assert done.model_extra["num_frames"] == 9  # 1 s at 8 fps -> 8 frames -> Wan takes 4k+1: 9
    assert done.model_extra["inference_time_s"] > 0 and done.completed_at >= done.created_at
    frames = _mp4(client.videos.download_content(video.id).read())
    assert frames.shape[:3] == (9, 32, 32)
    listed = client.videos.list()
    assert video.id in [v.id for v in listed.data]
    deleted = client.videos.delete(video.id)
    assert deleted.deleted is True and deleted.id == video.id
    with pytest.raises(openai.NotFoundError):
        client.videos.retrieve(video.id)


def test_vllm_omni_form_fields_multipart(client, server):
    # the client sends multipart/form-data; extra_body adds vLLM-Omni's fields to the form
    video = client.videos.create(prompt="a blue square", extra_body={
        "width": 48, "height": 32, "num_frames": 5, "fps": 4, "num_inference_steps": 2, "seed": 7})
    done = _poll(client, video.id)
    assert done.status == "completed" and done.size == "48x32" and done.seconds == "1.25"
    assert done.model_extra["num_inference_steps"] == 2 and done.model_extra["seed"] == 7
    frames = _mp4(server.call("GET", f"/v1/videos/{video.id}/content").body)
    assert frames.shape[:3] == (5, 32, 48)
    trace = server.call("GET", f"/v1/jobs/{video.id}/trace").json()
    assert [t["stage"] for t in trace["timeline"]].count("step") == 2


def test_vllm_omni_urlencoded_form(server):
    form = urllib.parse.urlencode({"prompt": "a green triangle", "width": 32, "height": 32, "num_frames": 5,
                                   "num_inference_steps": 2, "seed": 3}).encode()
    reply = server.call("POST", "/v1/videos", raw=form, headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == 200, reply.body
    video_id = reply.json()["id"]
    events = server.events(video_id)
    assert [e for e, _ in events][-1] == "completed"
    assert server.call("GET", f"/v1/videos/{video_id}").json()["status"] == "completed"


@pytest.mark.parametrize("form,param,status", [
    ({"prompt": "x", "num_frames": 6}, "num_frames", 400),
    ({"prompt": "x", "size": "32x32", "width": 32}, "size", 400),
    ({"prompt": "x", "seconds": "0"}, "seconds", 400),
    ({"prompt": "x", "seconds": "1", "num_frames": 9}, "seconds", 400),
    ({"prompt": "x", "fps": "fast"}, "fps", 400),
    ({"prompt": "x", "size": "33x32"}, "size", 400),
    ({"prompt": "x", "input_reference": "cat.png"}, "input_reference", 400),
    ({"width": 32}, "prompt", 400),
])
def test_bad_video_fields(server, form, param, status):
    before = len(server.log_lines())
    reply = server.call("POST", "/v1/videos", raw=urllib.parse.urlencode(form).encode(),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert reply.status == status, reply.body
    assert reply.json()["error"]["param"] == param
    assert len(server.log_lines()[before:]) == 1


def test_images_endpoint_refuses_on_a_video_model(client):
    with pytest.raises(openai.BadRequestError, match="makes video"):
        client.images.generate(prompt="x")


def test_content_of_an_unfinished_video_is_refused(server):
    video = server.call("POST", "/v1/videos", {"prompt": "x", "num_inference_steps": 300}).json()
    reply = server.call("GET", f"/v1/videos/{video['id']}/content")
    assert reply.status == 409 and reply.json()["error"]["code"] == "not_completed"
    gone = server.call("DELETE", f"/v1/videos/{video['id']}").json()
    assert gone["object"] == "video.deleted" and gone["status"] == "cancelled"
