"""``omni serve shapes`` through the official ``openai`` client and plain HTTP: images, the job API,
SSE order, the trace, cancel within one step, one log line per bad request."""

from __future__ import annotations

import base64
import io
import threading

import numpy as np
import openai
import pytest
from omni_model_shapes.checker import check
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

PROMPT = "a yellow square on a green background"


@pytest.fixture(scope="module")
def client(shapes_server):
    return openai.OpenAI(base_url=shapes_server.url + "/v1", api_key="unused", max_retries=0)


def _png(data: bytes) -> Image.Image:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    return Image.open(io.BytesIO(data))


def test_openai_client_b64_image_shows_the_prompt(client, shapes_server):
    result = client.images.generate(model="shapes", prompt=PROMPT, size="64x64", response_format="b64_json",
                                    extra_body={"seed": 0})
    assert len(result.data) == 1 and result.data[0].url is None
    image = _png(base64.b64decode(result.data[0].b64_json))
    assert image.size == (64, 64)
    verdict = check(np.asarray(image.convert("RGB")))
    assert (verdict.fg, verdict.shape, verdict.bg) == ("yellow", "square", "green"), verdict
    job_id = result.model_extra["job_id"]
    job = shapes_server.call("GET", f"/v1/jobs/{job_id}").json()
    assert job["status"] == "completed" and job["request"]["seed"] == 0 and job["steps_ran"] == 20

    # the same request as a URL: the same bytes (same seed, deterministic on CPU)
    by_url = client.images.generate(prompt=PROMPT, size="64x64", response_format="url", extra_body={"seed": 0})
    url = by_url.data[0].url
    assert url.startswith(shapes_server.url + "/v1/jobs/job_")
    fetched = shapes_server.call("GET", url[len(shapes_server.url):])
    assert fetched.status == 200 and fetched.headers["content-type"] == "image/png"
    assert fetched.body == base64.b64decode(result.data[0].b64_json)


def test_n_images_and_size(client):
    result = client.images.generate(prompt=PROMPT, n=2, size="32x48", extra_body={"seed": 3, "num_inference_steps": 2})
    sizes = [_png(base64.b64decode(d.b64_json)).size for d in result.data]
    assert sizes == [(32, 48), (32, 48)]


def test_models_and_health(client, shapes_server):
    models = client.models.list()
    [entry] = models.data
    assert entry.id == "shapes" and entry.model_extra["family"] == "flux" and entry.model_extra["ready"] is True
    assert entry.model_extra["defaults"]["num_inference_steps"] == 20
    assert shapes_server.call("GET", "/health/live").json() == {"status": "ok"}
    assert shapes_server.call("GET", "/health/ready").json()["status"] == "ready"


def test_not_ready_while_loading(shapes_server):
    """The fixture polled /health/ready from the start: 503 while the model loaded, and a job
    submitted then was refused with 503 too."""
    seen = shapes_server.while_loading
    assert seen, "the server was never seen loading"
    for reply in seen.values():
        assert reply.status == 503 and reply.json()["error"]["code"] == "not_ready", reply.body
    assert shapes_server.call("GET", "/health/ready").status == 200


def test_sse_events_arrive_in_order_and_trace_matches(shapes_server):
    job = shapes_server.call("POST", "/v1/jobs", {"prompt": PROMPT, "num_inference_steps": 5, "seed": 1}).json()
    assert job["status"] in ("queued", "running") and job["kind"] == "image"
    events = shapes_server.events(job["id"])
    names = [e for e, _ in events]
    assert names[:2] == ["queued", "started"] and names[-1] == "completed", names
    steps = [d["step"] for e, d in events if e == "step"]
    assert steps == [1, 2, 3, 4, 5] and all(d["total"] == 5 for e, d in events if e == "step")
    assert names.index("started") < names.index("step") and all(d["job_id"] == job["id"] for _, d in events)
    done = events[-1][1]
    assert done["artifacts"][0]["url"] == f"/v1/jobs/{job['id']}/content?index=0"
    # replayed from the database once finished
    assert [e for e, _ in shapes_server.events(job["id"])] == names

    trace = shapes_server.call("GET", f"/v1/jobs/{job['id']}/trace").json()
    stages = [t["stage"] for t in trace["timeline"]]
    assert stages == ["queue_wait", "encode"] + ["step"] * 5 + ["vae_decode", "write"]
    assert all(t["seconds"] >= 0 for t in trace["timeline"])
    assert trace["report"]["load_run_id"] and trace["prompt_embedding_cache"] is not None


def test_cancel_stops_within_one_step_and_next_request_succeeds(shapes_server, client):
    job = shapes_server.call("POST", "/v1/jobs", {"prompt": PROMPT, "num_inference_steps": 400}).json()
    seen = shapes_server.events(job["id"], until=lambda e, d: e == "step" and d["step"] >= 3)
    observed = seen[-1][1]["step"]
    reply = shapes_server.call("DELETE", f"/v1/jobs/{job['id']}")
    assert reply.status == 200, reply.body
    gone = reply.json()
    assert gone["deleted"] is True and gone["status"] == "cancelled", gone
    assert gone["cancelled_at_step"] >= observed
    assert gone["steps_ran"] - gone["cancelled_at_step"] <= 1, gone
    assert gone["steps_ran"] < 400
    assert shapes_server.call("GET", f"/v1/jobs/{job['id']}").status == 404
    after = client.images.generate(prompt=PROMPT, size="64x64", extra_body={"num_inference_steps": 2})
    assert _png(base64.b64decode(after.data[0].b64_json)).size == (64, 64)


def test_cancel_a_queued_job(shapes_server):
    first = shapes_server.call("POST", "/v1/jobs", {"prompt": PROMPT, "num_inference_steps": 400}).json()
    second = shapes_server.call("POST", "/v1/jobs", {"prompt": PROMPT}).json()
    assert shapes_server.call("GET", f"/v1/jobs/{second['id']}").json()["status"] == "queued"
    gone = shapes_server.call("DELETE", f"/v1/jobs/{second['id']}").json()
    assert gone["status"] == "cancelled" and gone["steps_ran"] == 0
    assert shapes_server.call("DELETE", f"/v1/jobs/{first['id']}").json()["status"] == "cancelled"


BAD = [
    # (body, status, param)
    ({"size": "64x64"}, 400, "prompt"),
    ({"prompt": PROMPT, "size": "big"}, 400, "size"),
    ({"prompt": PROMPT, "size": "60x64"}, 400, "size"),
    ({"prompt": PROMPT, "n": 0}, 400, "n"),
    ({"prompt": PROMPT, "n": 5}, 413, "n"),
    ({"prompt": PROMPT, "size": "512x512"}, 413, "size"),
    ({"prompt": PROMPT, "num_inference_steps": 5000}, 413, "num_inference_steps"),
    ({"prompt": PROMPT, "num_inference_steps": "many"}, 400, "num_inference_steps"),
    ({"prompt": PROMPT, "seed": -1}, 400, "seed"),
    ({"prompt": PROMPT, "guidance_scale": "nan"}, 400, "guidance_scale"),
    ({"prompt": 7}, 400, "prompt"),
    ({"prompt": PROMPT, "quality": "hd"}, 400, "quality"),
    ({"prompt": PROMPT, "response_format": "jpeg"}, 400, "response_format"),
    ({"prompt": PROMPT, "model": "dall-e-3"}, 400, "model"),
    ({"prompt": PROMPT, "options": {"teacache.coefficients": [1, 2]}}, 400, "options.teacache.coefficients"),
    ({"prompt": PROMPT, "options": {"teacache.rel_l1_thresh": -1}}, 400, "options.teacache.rel_l1_thresh"),
    ({"prompt": PROMPT, "options": {"vae_tiling.tile_size": 1}}, 400, "options.vae_tiling.tile_size"),
    ({"prompt": PROMPT, "options": {"nope": 1}}, 400, "options.nope"),
]


@pytest.mark.parametrize("body,status,param", BAD, ids=[f"{b[2]}-{b[1]}" for b in BAD])
def test_bad_input_is_one_error_body_and_one_log_line(shapes_server, body, status, param):
    before = len(shapes_server.log_lines())
    reply = shapes_server.call("POST", "/v1/images/generations", body)
    assert reply.status == status, reply.body
    error = reply.json()["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["param"] == param
    assert error["message"].startswith(param), error
    assert "Traceback" not in reply.body.decode()
    new = shapes_server.log_lines()[before:]
    assert len(new) == 1 and f" {status} " in new[0] and error["message"] in new[0], new


@pytest.mark.parametrize("method,path,raw,status", [
    ("POST", "/v1/images/generations", b"{not json", 400),
    ("POST", "/v1/images/generations", b"[1, 2]", 400),
    ("GET", "/v1/jobs/job_0123456789abcdef0123456789abcdef", None, 404),
    ("GET", "/v1/jobs/../../etc/passwd", None, 404),
    ("GET", "/v1/jobs/job_x/content?index=0", None, 404),
    ("GET", "/v1/jobs/job_x/trace", None, 404),
    ("DELETE", "/v1/jobs/nope", None, 404),
    ("GET", "/v1/nothing-here", None, 404),
    ("POST", "/v1/videos", b'{"prompt": "x"}', 400),
    ("GET", "/v1/jobs?limit=0", None, 400),
])
def test_other_errors_are_error_bodies_with_one_log_line(shapes_server, method, path, raw, status):
    before = len(shapes_server.log_lines())
    reply = shapes_server.call(method, path, raw=raw, headers={"Content-Type": "application/json"})
    assert reply.status == status, reply.body
    assert set(reply.json()["error"]) == {"message", "type", "param", "code"}
    assert len(shapes_server.log_lines()[before:]) == 1


def test_concurrent_clients_each_get_their_own_image(shapes_server):
    results = {}

    def one(seed):
        reply = shapes_server.call("POST", "/v1/images/generations",
                                   {"prompt": PROMPT, "seed": seed, "num_inference_steps": 2})
        results[seed] = reply

    threads = [threading.Thread(target=one, args=(s,)) for s in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.status == 200 for r in results.values())
    assert len({r.json()["job_id"] for r in results.values()}) == 4


def _metrics(server) -> dict:
    text = server.call("GET", "/metrics").body.decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def test_per_request_option_and_metrics_count_what_was_done(shapes_server, client):
    before = _metrics(shapes_server)
    result = client.images.generate(prompt=PROMPT, extra_body={"seed": 4, "options": {"teacache.rel_l1_thresh": 0.6}})
    assert shapes_server.call("POST", "/v1/images/generations", {"prompt": PROMPT, "size": "x"}).status == 400
    after = _metrics(shapes_server)
    report = shapes_server.call("GET", f"/v1/jobs/{result.model_extra['job_id']}/trace").json()["report"]
    assert "per-request options: teacache.rel_l1_thresh=0.6" in report["notes"]
    assert next(r for r in report["config_resolved"] if r["name"] == "teacache")["options"]["rel_l1_thresh"] == 0.6
    hits = {h["method"]: h for h in report["cache_hits"]}

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    route = "/v1/images/generations"
    assert delta("omni_http_requests_total", route=route, method="POST", status="200") == 1
    assert delta("omni_http_requests_total", route=route, method="POST", status="400") == 1
    assert delta("omni_jobs_total", status="completed") == 1
    assert delta("omni_denoiser_calls_total", cache="teacache", result="computed") == hits["teacache"]["computed"]
    assert delta("omni_denoiser_calls_total", cache="teacache", result="reused") == hits["teacache"]["reused"] > 0
    assert delta("omni_prompt_embedding_cache_total", result="hit") == hits["text_embedding"]["reused"]
    assert delta("omni_prompt_embedding_cache_total", result="miss") == hits["text_embedding"]["computed"]
    assert delta("omni_stage_duration_seconds_count", stage="step") == 20
    assert abs(delta("omni_stage_duration_seconds_sum", stage="step") - sum(report["timings"]["steps"])) < 1e-3
    assert delta("omni_stage_duration_seconds_count", stage="write") == 1
    assert after[("omni_queue_depth", ())] == 0 and after[("omni_jobs_in_flight", ())] == 0
    assert after[("omni_ready", ())] == 1


def test_job_api_through_the_openai_clients_generic_calls(client):
    """The forms docs/serving.md shows for omni's routes that OpenAI lacks."""
    job = client.post("/jobs", body={"prompt": PROMPT, "num_inference_steps": 3}, cast_to=object)
    events = list(client.get(f"/jobs/{job['id']}/events", cast_to=object, stream=True,
                             stream_cls=openai.Stream[object]))
    assert [e["event"] for e in events if e["event"] in ("queued", "started", "completed")] == \
        ["queued", "started", "completed"]
    assert [e["step"] for e in events if e["event"] == "step"] == [1, 2, 3]
    assert client.get(f"/jobs/{job['id']}", cast_to=object)["status"] == "completed"
    assert client.get("/jobs?limit=1", cast_to=object)["data"][0]["id"] == job["id"]
    assert [t["stage"] for t in client.get(f"/jobs/{job['id']}/trace", cast_to=object)["timeline"]][-1] == "write"
    png = client.get(f"/jobs/{job['id']}/content", cast_to=openai.HttpxBinaryResponseContent).content
    assert _png(png).size == (64, 64)
    assert client.get("/../health/ready", cast_to=object)["status"] == "ready"
    assert "omni_jobs_total" in client.get("/../metrics", cast_to=openai.HttpxBinaryResponseContent).text
    assert client.delete(f"/jobs/{job['id']}", cast_to=object)["deleted"] is True
