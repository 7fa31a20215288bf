"""``omni serve tiny-flux --api-key ... --max-queue 4``: the key is enforced, and a bounded load test
(200 requests at concurrency 16) loses nothing: every request completes or is refused with 429, no
5xx, and the metrics count exactly what happened."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

KEY = "test-key-0123"
AUTH = {"Authorization": f"Bearer {KEY}"}
REQUESTS, CONCURRENCY = 200, 16


@pytest.fixture(scope="module")
def server(start_server, tmp_path_factory):
    s = start_server("tiny-flux", tmp_path_factory.mktemp("serve-load"), "--api-key", KEY, "--max-queue", "4")
    yield s
    assert s.stop() == 0


def _metrics(server) -> dict:
    reply = server.call("GET", "/metrics", headers=AUTH)
    assert reply.status == 200
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(reply.body.decode()) for s in family.samples}


@pytest.mark.parametrize("path", ["/v1/models", "/v1/jobs", "/metrics", "/v1/jobs/job_0123456789abcdef0123456789abcdef"])
def test_api_key_enforced(server, path):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        before = len(server.log_lines())
        reply = server.call("GET", path, headers=headers)
        assert reply.status == 401, (path, headers)
        assert reply.json()["error"]["type"] == "authentication_error"
        assert len(server.log_lines()[before:]) == 1
    assert server.call("GET", path, headers=AUTH).status in (200, 404)


def test_public_routes_need_no_key(server):
    assert server.call("GET", "/health/live").status == 200
    assert server.call("GET", "/health/ready").status == 200
    page = server.call("GET", "/")
    assert page.status == 200 and b"<title>omni serve</title>" in page.body


def test_openai_client_with_key(server):
    client = openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0)
    assert client.images.generate(prompt="a red circle", extra_body={"num_inference_steps": 1}).data[0].b64_json
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=server.url + "/v1", api_key="nope", max_retries=0).models.list()


def test_load_nothing_lost(server):
    before = _metrics(server)

    def one(i):
        reply = server.call("POST", "/v1/images/generations", {"prompt": f"a red circle {i % 5}", "seed": i,
                                                               "num_inference_steps": 1}, headers=AUTH)
        return reply.status, reply.json()

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        results = list(pool.map(one, range(REQUESTS)))
    statuses = [s for s, _ in results]
    assert set(statuses) <= {200, 429}, sorted(set(statuses))
    completed = [body["job_id"] for s, body in results if s == 200]
    assert len(completed) == len(set(completed)) and completed, statuses.count(429)
    assert all(body["error"]["code"] == "queue_full" for s, body in results if s == 429)
    assert all(len(body["data"]) == 1 and body["data"][0]["b64_json"] for s, body in results if s == 200)

    # every completed job is on record with its file; the server's counters agree
    listed, after = set(), ""
    while True:
        page = server.call("GET", f"/v1/jobs?limit=100{after}", headers=AUTH).json()
        listed |= {j["id"] for j in page["data"] if j["status"] == "completed"}
        if not page["has_more"]:
            break
        after = f"&after={page['last_id']}"
    assert set(completed) <= listed
    after_metrics = _metrics(server)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after_metrics.get(key, 0) - before.get(key, 0)

    route = "/v1/images/generations"
    assert delta("omni_http_requests_total", route=route, method="POST", status="200") == len(completed)
    assert delta("omni_http_requests_total", route=route, method="POST", status="429") == statuses.count(429)
    assert delta("omni_jobs_total", status="completed") == len(completed)
    assert delta("omni_stage_duration_seconds_count", stage="step") == len(completed)
    hits = delta("omni_prompt_embedding_cache_total", result="hit")
    misses = delta("omni_prompt_embedding_cache_total", result="miss")
    assert hits + misses == len(completed) and hits >= len(completed) - 5  # 5 distinct prompts
    assert after_metrics[("omni_queue_depth", ())] == 0 and after_metrics[("omni_jobs_in_flight", ())] == 0
    assert after_metrics[("omni_peak_memory_bytes", (("kind", "rss"),))] > 0
