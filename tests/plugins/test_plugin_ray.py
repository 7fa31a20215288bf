"""omni-plugin-ray: omni serve's HTTP API as a FastAPI ingress on Ray Serve, two CPU replicas of tiny-flux
(one torch thread each) on a local Ray cluster this module starts and shuts down.

The official ``openai`` client through the ingress; a request the replica's Engine refuses is 400 naming
the field; killing one replica's actor mid-request fails only that job (the job store lives with the
ingress) and Ray Serve replaces the replica; metrics count jobs per replica. Waits are bounded."""

import base64
import io
import json
import time
import urllib.request

import pytest

ray = pytest.importorskip("ray")
openai = pytest.importorskip("openai")

STEPS_LONG = 400  # tiny-flux steps: long enough to kill a replica mid-job
DEADLINE_S = 240


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    from omni_plugin_ray.main import RayOptions, deploy
    from omni_plugin_serve.main import ServeArgs
    from ray import serve

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield deploy(ServeArgs(model="tiny-flux", port=0, data_dir=str(tmp_path_factory.mktemp("ray-data")),
                               max_queue=4), RayOptions(replicas=2, replica_cpus=1))
    finally:
        serve.shutdown()
        ray.shutdown()


@pytest.fixture(scope="module")
def client(url):
    return openai.OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=DEADLINE_S, max_retries=0)


def _http(method: str, url: str, body: dict | None = None):
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    return urllib.request.urlopen(request, timeout=DEADLINE_S)


def _json(method: str, url: str, body: dict | None = None) -> dict:
    with _http(method, url, body) as response:
        return json.loads(response.read())


def _events_until(url: str, job_id: str, wanted: str) -> dict:
    """Read the job's Server-Sent Events until ``wanted``; returns its data."""
    with _http("GET", f"{url}/v1/jobs/{job_id}/events") as response:
        for raw in response:
            line = raw.decode().strip()
            if line.startswith("data:"):
                data = json.loads(line[5:])
                if data["event"] == wanted:
                    return data
                assert data["event"] not in ("completed", "failed", "cancelled"), data
    raise AssertionError(f"no {wanted} event for {job_id}")


def _wait_final(url: str, job_id: str) -> dict:
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        job = _json("GET", f"{url}/v1/jobs/{job_id}")
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} did not end in {DEADLINE_S}s")


def test_openai_client_through_the_ray_ingress(client):
    from PIL import Image

    result = client.images.generate(prompt="a red circle", size="64x64",
                                    extra_body={"seed": 1, "num_inference_steps": 4})
    image = Image.open(io.BytesIO(base64.b64decode(result.data[0].b64_json)))
    assert image.size == (64, 64)
    assert result.model_extra["job_id"].startswith("job_")
    model = client.models.list().data[0]
    assert model.id == "tiny-flux" and model.model_extra["family"] == "flux" and model.model_extra["ready"]


def test_a_field_the_replica_refuses_is_400_naming_it(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.images.generate(prompt="x", size="60x60")
    assert caught.value.body["param"] == "size" and "multiple of 16" in caught.value.body["message"]


def test_deleting_a_running_job_cancels_it_on_its_replica(url, client):
    job = _json("POST", f"{url}/v1/jobs", {"prompt": "c", "num_inference_steps": STEPS_LONG})
    _events_until(url, job["id"], "step")
    deleted = _json("DELETE", f"{url}/v1/jobs/{job['id']}")
    assert deleted["status"] == "cancelled" and deleted["steps_ran"] < STEPS_LONG, deleted
    # the service goes on: new requests complete
    for prompt in ("d", "e"):
        assert client.images.generate(prompt=prompt, size="64x64", extra_body={"num_inference_steps": 2}).data


def test_killing_a_replica_mid_request_fails_only_that_job(url, client):
    first = _json("POST", f"{url}/v1/jobs", {"prompt": "a", "num_inference_steps": STEPS_LONG})
    on = _events_until(url, first["id"], "started")["replica"]
    second = _json("POST", f"{url}/v1/jobs", {"prompt": "b", "num_inference_steps": STEPS_LONG})
    other = _events_until(url, second["id"], "started")["replica"]
    assert other != on, "Ray Serve sent the second job to the busy replica"
    _events_until(url, first["id"], "step")  # mid-request
    name = next(a["name"] for a in ray.util.list_named_actors(all_namespaces=True) if a["name"].endswith("#" + on))
    ray.kill(ray.get_actor(name, namespace="serve"))
    failed, completed = _wait_final(url, first["id"]), _wait_final(url, second["id"])
    assert failed["status"] == "failed" and f"replica {on} died" in failed["error"]["message"], failed
    assert completed["status"] == "completed" and completed["steps_ran"] == STEPS_LONG, completed
    again = client.images.generate(prompt="after", size="64x64", extra_body={"num_inference_steps": 2})
    assert again.data[0].b64_json  # the service goes on (the other replica, or the one Serve started)


def test_metrics_show_per_replica_counts(url):
    with _http("GET", f"{url}/metrics") as response:
        text = response.read().decode()
    done = {}
    for line in text.splitlines():
        if line.startswith("omni_replica_jobs_total{"):
            labels = dict(part.split("=") for part in line[line.index("{") + 1:line.index("}")].split(","))
            done[(labels["replica"].strip('"'), labels["status"].strip('"'))] = float(line.split()[-1])
    replicas = {replica for replica, _ in done}
    assert len(replicas) >= 2, done  # both replicas ran jobs in the tests above
    assert any(status == "failed" and n >= 1 for (_, status), n in done.items()), done
    assert sum(n for (_, status), n in done.items() if status == "completed") >= 3, done
    assert "omni_replica_jobs_in_flight{" in text
