"""A real ``omni serve`` subprocess on 127.0.0.1 and a free port, and plain-HTTP helpers (stdlib)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

READY_TIMEOUT_S = 240


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Reply:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def serve_env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def omni_serve(model: str, *args: str, data_dir: Path, log: Path, port: int | None = None) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "omni", "serve", model, "--port", str(port), "--data-dir", str(data_dir), *args]
    with open(log, "ab") as fh:
        return subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=serve_env())


class Server:
    """One ``omni serve`` process; ``call`` speaks HTTP to it, ``log_lines`` reads what it printed."""

    def __init__(self, model: str, tmp: Path, *args: str, data_dir: Path | None = None) -> None:
        self.model, self.args, self.tmp = model, args, tmp
        tmp.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir or tmp / "data"
        self.log = tmp / "server.log"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc = omni_serve(model, *args, data_dir=self.data_dir, log=self.log, port=self.port)
        self.wait_ready()

    def wait_ready(self) -> None:
        """Poll ``/health/ready``; the first 503 (loading) and a job submitted then are kept in
        ``while_loading`` for the tests."""
        deadline = time.monotonic() + READY_TIMEOUT_S
        self.while_loading: dict[str, Reply] = {}
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"omni serve exited with {self.proc.returncode}:\n{self.log.read_text()}")
            try:
                ready = self.call("GET", "/health/ready", timeout=5)
                if ready.status == 200:
                    return
                if not self.while_loading:
                    self.while_loading = {"ready": ready, "submit": self.call("POST", "/v1/jobs", {"prompt": "x"})}
            except OSError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"omni serve not ready after {READY_TIMEOUT_S}s:\n{self.log.read_text()}")

    def call(self, method: str, path: str, body=None, *, headers: dict | None = None, raw: bytes | None = None,
             timeout: float = 120) -> Reply:
        headers = dict(headers or {})
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            headers.setdefault("Content-Type", "application/json")
        req = urllib.request.Request(self.url + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Reply(r.status, dict(r.headers), r.read())
        except urllib.error.HTTPError as e:
            return Reply(e.code, dict(e.headers), e.read())

    def events(self, job_id: str, *, headers: dict | None = None, until=None, timeout: float = 120):
        """Read the job's Server-Sent Events to the end (or until ``until(event, data)`` is true)."""
        req = urllib.request.Request(f"{self.url}/v1/jobs/{job_id}/events", headers=headers or {})
        out = []
        with urllib.request.urlopen(req, timeout=timeout) as r:
            assert r.headers["Content-Type"].startswith("text/event-stream")
            event = data = None
            for raw in r:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    event = line[7:]
                elif line.startswith("data: "):
                    data = json.loads(line[6:])
                elif line == "" and event is not None:
                    out.append((event, data))
                    if until is not None and until(event, data):
                        return out
                    event = data = None
        return out

    def log_lines(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def start_server():
    """``start_server(model, tmp_dir, *flags, data_dir=None)`` -> a ready :class:`Server`; any still
    running at the end of the session is stopped."""
    started: list[Server] = []

    def start(model: str, tmp: Path, *args: str, data_dir: Path | None = None) -> Server:
        server = Server(model, tmp, *args, data_dir=data_dir)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(scope="session")
def shapes_server(start_server, tmp_path_factory):
    """``omni serve shapes --optimize teacache`` (a step cache, so denoiser calls are computed or
    reused), shared by the modules that only check what they did themselves."""
    return start_server("shapes", tmp_path_factory.mktemp("serve-shapes"), "--optimize", "teacache",
                        "--max-size", "256", "--max-n", "4")


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (Debian's ``chromium`` + ``chromium-driver``) driven by selenium, for the playground."""
    from selenium import webdriver  # tests/requirements.txt

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.fail("the playground tests need Debian's chromium and chromium-driver (apt-get install chromium "
                    "chromium-driver; .ci/run installs them)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=driver_path), options=options)
    yield driver
    driver.quit()
