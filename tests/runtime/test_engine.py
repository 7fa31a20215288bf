"""The Engine: load once, validate before running, a bounded FIFO queue, abort between steps, the
prompt-embedding cache, self-contained request reports linked to the load report."""

import threading

import numpy as np
import pytest

import omni
from omni.errors import UsageError
from omni.runtime.engine import JobCancelled, QueueFull
from omni.runtime.request import FieldError


@pytest.fixture(scope="module")
def engine():
    eng = omni.Engine("tiny-flux", max_queue=2)
    yield eng
    eng.close()


def test_loads_once_and_links_request_reports_to_the_load_report(engine):
    first = engine.generate("a red circle on a blue background", seed=1)
    second = engine.generate("a red circle on a blue background", seed=1)
    np.testing.assert_array_equal(first.images, second.images)
    assert first.report.load_run_id == second.report.load_run_id == engine.load_report.run_id
    assert first.report.run_id != second.report.run_id
    assert len(first.report.timings["steps"]) == 4 and "queue_wait" in first.report.timings
    assert first.report.timings["stages"] == engine.load_report.timings["stages"]


def test_prompt_embedding_cache_hits_are_lossless(engine):
    miss = engine.generate("a green square on a white background", seed=2)
    hit = engine.generate("a green square on a white background", seed=2)
    text = {r.run_id: next(c for c in r.cache_hits if c["method"] == "text_embedding") for r in (miss.report, hit.report)}
    assert text[miss.report.run_id]["computed"] >= 1 and text[miss.report.run_id]["reused"] == 0
    assert text[hit.report.run_id]["reused"] >= 1 and text[hit.report.run_id]["computed"] == 0
    np.testing.assert_array_equal(miss.images, hit.images)


def test_the_prompt_cache_can_be_turned_off():
    with omni.Engine("tiny-flux", prompt_cache=False) as eng:
        report = eng.generate("a red circle", seed=0).report
    assert not [c for c in report.cache_hits if c["method"] == "text_embedding"]


@pytest.mark.parametrize(
    "fields, param, message",
    [
        ({"height": 40}, "height", "40 is not a multiple of 16 for flux"),
        ({"height": 8}, "height", "below flux's minimum 16"),
        ({"seed": 2**64}, "seed", "at most"),
        ({"seed": -1}, "seed", "at least 0"),
        ({"num_inference_steps": 0}, "num_inference_steps", "at least 1"),
        ({"num_inference_steps": 10_000_000_000_000}, "num_inference_steps", "at most"),
        ({"num_frames": 9}, "num_frames", "makes images"),
        ({"guidance_scale": float("nan")}, "guidance_scale", "finite"),
        ({"stepz": 3}, "stepz", "unknown request field"),
        ({"extra": {"callback": None}}, "callback", "set by omni"),
        ({"extra": {"not_an_argument": 1}}, "not_an_argument", "does not accept"),
        ({"options": {"teacache.rel_l1_thresh": 0.3}}, "options.teacache.rel_l1_thresh", "not applied"),
    ],
)
def test_bad_requests_are_refused_before_running_naming_the_field(engine, fields, param, message):
    with pytest.raises(FieldError, match=message) as err:
        engine.submit("a red circle", **fields)
    assert err.value.param == param and str(err.value).startswith(f"{param}: ")


def _block_at_step(job, step, release: threading.Event, reached: threading.Event):
    def listener(_job, event, data):
        if event == "step" and data["step"] == step:
            reached.set()
            release.wait(60)

    job.subscribe(listener)


def test_cancel_stops_within_one_step_and_the_next_request_is_unaffected():
    with omni.Engine("tiny-flux") as eng:
        reference = eng.generate("a yellow triangle", seed=5, num_inference_steps=8).images
        job = eng.submit("a yellow triangle", seed=5, num_inference_steps=8)
        release, reached = threading.Event(), threading.Event()
        _block_at_step(job, 2, release, reached)
        assert reached.wait(60)
        assert job.cancel()
        release.set()
        assert job.wait(60) and job.status == "cancelled"
        assert job.steps_ran is not None and job.steps_ran <= 3  # cancelled during step 2's listener
        with pytest.raises(JobCancelled, match="cancelled after"):
            job.result()
        again = eng.generate("a yellow triangle", seed=5, num_inference_steps=8).images
        np.testing.assert_array_equal(again, reference)
        assert [e for e, _ in job.events][:2] == ["queued", "started"] and job.events[-1][0] == "cancelled"


def test_full_queue_refuses_at_once_and_queued_jobs_can_be_cancelled():
    with omni.Engine("tiny-flux", max_queue=1) as eng:
        release, reached = threading.Event(), threading.Event()
        running = eng.submit("a red circle", num_inference_steps=3)
        _block_at_step(running, 1, release, reached)
        assert reached.wait(60)
        queued = eng.submit("a blue circle", num_inference_steps=3)
        with pytest.raises(QueueFull, match="queue is full"):
            eng.submit("a green circle")
        assert queued.cancel() and queued.status == "cancelled" and queued.steps_ran == 0
        release.set()
        assert running.result(60).images.shape == (1, 64, 64, 3)
        assert queued.started is None


def test_close_cancels_what_is_queued():
    eng = omni.Engine("tiny-flux", max_queue=4)
    release, reached = threading.Event(), threading.Event()
    running = eng.submit("a red circle", num_inference_steps=3)
    _block_at_step(running, 1, release, reached)
    assert reached.wait(60)
    waiting = [eng.submit("a red circle", num_inference_steps=3) for _ in range(2)]
    threading.Timer(0.5, release.set).start()
    cancelled = eng.close(cancel_running=False, timeout=60)
    assert {j.id for j in cancelled} == {j.id for j in waiting}
    assert running.status == "completed"
    with pytest.raises(UsageError.__mro__[1]):  # EngineClosed is an OmniError
        eng.submit("a red circle")


def test_constructor_refuses_bad_config_before_loading(monkeypatch):
    import omni.loading

    monkeypatch.setattr(omni.loading, "load_diffusers", lambda *a, **k: (_ for _ in ()).throw(AssertionError("loaded")))
    with pytest.raises(UsageError, match="unknown config key"):
        omni.Engine("tiny-flux", config={"not_a_key": 1})
    with pytest.raises(UsageError, match="optimize must be a list"):
        omni.Engine("tiny-flux", optimize="teacache")
