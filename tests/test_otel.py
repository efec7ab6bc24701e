"""OpenTelemetry: a worker's span continues the trace of the producer's add."""

from __future__ import annotations

import ast
import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from glide import GlideClient
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import glidemq

_EXPORTER = InMemorySpanExporter()
_PROVIDER = TracerProvider()
_PROVIDER.add_span_processor(SimpleSpanProcessor(_EXPORTER))


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans finished during the test (the process-wide provider is set once)."""
    trace.set_tracer_provider(_PROVIDER)  # a no-op, with a warning, after the first time
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


def _named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


async def _process(queue: glidemq.Queue, url: str, jobs: list[glidemq.Job], fail: bool = False) -> None:
    async def processor(job: glidemq.Job) -> str:
        if fail:
            raise RuntimeError("cannot")
        return "done"

    async with glidemq.Worker(queue.name, processor, connection=url, concurrency=4):
        for job in jobs:
            try:
                await job.wait_until_finished(timeout=10)
            except glidemq.JobFailedError:
                pass


async def test_the_worker_span_continues_the_producer_trace(
    queue: glidemq.Queue, url: str, spans: InMemorySpanExporter
) -> None:
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        job = await queue.add("welcome", {"to": "a@b.c"})
    await _process(queue, url, [job])
    (send,) = _named(spans, f"send {queue.name}")
    (process,) = _named(spans, f"process {queue.name}")
    assert send.kind == SpanKind.PRODUCER and process.kind == SpanKind.CONSUMER
    assert send.parent is not None and send.parent.span_id == request.get_span_context().span_id
    assert process.context.trace_id == send.context.trace_id == request.get_span_context().trace_id
    assert process.parent is not None and process.parent.span_id == send.context.span_id
    assert process.attributes is not None
    assert process.attributes["messaging.message.id"] == job.id
    assert process.attributes["messaging.destination.name"] == queue.name


@pytest.mark.parametrize("kind", ["async", "sync"])
async def test_spans_opened_by_the_processor_are_children_of_the_process_span(
    queue: glidemq.Queue, url: str, spans: InMemorySpanExporter, kind: str
) -> None:
    def work(job: glidemq.Job) -> str:
        with trace.get_tracer("app").start_as_current_span("render"):
            return "ok"

    async def async_work(job: glidemq.Job) -> str:
        return work(job)

    job = await queue.add("x")
    async with glidemq.Worker(queue.name, async_work if kind == "async" else work, connection=url):
        await job.wait_until_finished(timeout=10)
    (process,) = _named(spans, f"process {queue.name}")
    (render,) = _named(spans, "render")
    assert render.parent is not None and render.parent.span_id == process.context.span_id


async def test_every_job_of_a_bulk_add_carries_the_trace(
    queue: glidemq.Queue, url: str, spans: InMemorySpanExporter
) -> None:
    jobs = await queue.add_bulk([("j", i) for i in range(3)])
    await _process(queue, url, jobs)
    (send,) = _named(spans, f"send {queue.name}")
    processed = _named(spans, f"process {queue.name}")
    assert len(processed) == 3
    assert all(p.parent is not None and p.parent.span_id == send.context.span_id for p in processed)


async def test_concurrent_adds_keep_their_own_traces(
    queue: glidemq.Queue, url: str, spans: InMemorySpanExporter
) -> None:
    jobs = await asyncio.gather(*(queue.add("j", i) for i in range(5)))  # merged into one server call
    await _process(queue, url, list(jobs))
    sends = {s.context.span_id: s for s in _named(spans, f"send {queue.name}")}
    assert len(sends) == 5
    processed = _named(spans, f"process {queue.name}")
    by_job = {p.attributes["messaging.message.id"]: p for p in processed if p.attributes}
    assert set(by_job) == {j.id for j in jobs}
    assert {p.parent.span_id for p in processed if p.parent} == set(sends)


async def test_a_failed_job_marks_its_span(queue: glidemq.Queue, url: str, spans: InMemorySpanExporter) -> None:
    job = await queue.add("bad")
    await _process(queue, url, [job], fail=True)
    (process,) = _named(spans, f"process {queue.name}")
    assert process.status.status_code == StatusCode.ERROR
    assert any(event.name == "exception" for event in process.events)


async def test_the_context_is_stored_with_the_job(
    queue: glidemq.Queue, raw: GlideClient, spans: InMemorySpanExporter
) -> None:
    job = await queue.add("x")
    (send,) = _named(spans, f"send {queue.name}")
    stored = await raw.hget(f"glidemq:{{{queue.name}}}:j:{job.id}", "tc")
    assert stored is not None
    assert f"{send.context.trace_id:032x}-{send.context.span_id:016x}" in stored.decode()


def test_without_opentelemetry_everything_works_and_nothing_is_loaded(url: str) -> None:
    script = textwrap.dedent(
        f"""
        import asyncio, sys

        class NoOpenTelemetry:  # as if it were not installed
            def find_spec(self, name, path=None, target=None):
                if name == "opentelemetry" or name.startswith("opentelemetry."):
                    raise ImportError(name)
                return None

        sys.meta_path.insert(0, NoOpenTelemetry())
        import glidemq

        async def main():
            async with glidemq.Queue("untraced", connection={url!r}) as q:
                job = await q.add("x")
                await q.add_bulk([("y", 1)])
                async with glidemq.Worker("untraced", lambda job: "ok", connection={url!r}):
                    print(await job.wait_until_finished(timeout=10))
                await q.obliterate(force=True)

        asyncio.run(main())
        print(sorted(m for m in sys.modules if m.startswith("opentelemetry")))
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n[]\n"


def test_no_glidemq_module_imports_opentelemetry_at_import_time() -> None:
    # valkey-glide loads opentelemetry-api by itself when it is installed; glidemq's own modules
    # only import it inside the functions that run once an application set a tracer provider
    package = Path(glidemq.__file__).parent
    for source in package.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in tree.body:
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.split(".")[0] == "opentelemetry" for n in names), f"{source.name} imports {names}"


async def test_without_a_tracer_provider_jobs_carry_nothing(
    queue: glidemq.Queue, raw: GlideClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(trace, "get_tracer_provider", lambda: trace.ProxyTracerProvider())
    job = await queue.add("x")
    assert await raw.hget(f"glidemq:{{{queue.name}}}:j:{job.id}", "tc") is None
