"""examples/starlette_app.py: one Queue per app from the lifespan, with TestClient and a real uvicorn server."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import httpx
import pytest
from starlette.testclient import TestClient

from glidemq.sync import Queue, Worker
from glidemq.testing import free_port

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "starlette_app.py"


@pytest.fixture
def example(url: str, qname: str, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setenv("GLIDEMQ_URL", url)
    monkeypatch.setenv("EXAMPLE_QUEUE", qname)
    spec = importlib.util.spec_from_file_location(f"starlette_app_{qname}", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def worker(example: ModuleType, url: str, qname: str) -> Iterator[Worker]:
    with Worker(qname, example.send_email, connection=url) as running:
        yield running


def test_lifespan_queue_serves_requests(example: ModuleType, worker: Worker, url: str, qname: str) -> None:
    with TestClient(example.app) as client:
        created = client.post("/jobs", json={"data": {"to": "ada@example.com"}})
        assert created.status_code == 202
        job_id = created.json()["id"]
        with Queue(qname, connection=url) as q:
            job = q.get_job(job_id)
            assert job is not None and job.wait_until_finished(timeout=15) == "sent to ada@example.com"
        status = client.get(f"/jobs/{job_id}").json()
        assert status == {"id": job_id, "state": "completed", "result": "sent to ada@example.com", "error": None}
        assert client.get("/jobs/nope").status_code == 404


def test_bad_input_is_a_422_and_writes_nothing(example: ModuleType, url: str, qname: str) -> None:
    with TestClient(example.app) as client:
        assert client.post("/jobs", json={"data": {"to": "x"}, "delay": -1}).status_code == 422
    with Queue(qname, connection=url) as q:
        assert q.count() == 0 and q.get_job_counts()["delayed"] == 0


def test_under_uvicorn(url: str, qname: str) -> None:
    port = free_port()
    env = {**os.environ, "GLIDEMQ_URL": url, "EXAMPLE_QUEUE": qname}
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "starlette_app:app", "--port", str(port), "--log-level", "warning"],
        cwd=EXAMPLE.parent, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, server.communicate()[1]
                time.sleep(0.1)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
            ids = [client.post("/jobs", json={"data": {"to": f"u{i}"}}).json()["id"] for i in range(5)]
            assert [client.get(f"/jobs/{i}").json()["state"] for i in ids] == ["waiting"] * 5
        with Queue(qname, connection=url) as q:
            assert q.count() == 5
    finally:
        server.terminate()
        server.communicate(timeout=30)
