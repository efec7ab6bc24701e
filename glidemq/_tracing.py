"""OpenTelemetry spans for adding and processing jobs (``pip install "glidemq[otel]"``).

glidemq never imports OpenTelemetry itself: tracing is on once the application has set a
tracer provider (``opentelemetry.trace.set_tracer_provider``), and costs a dictionary look-up
(plus, when the API is loaded, one ``get_tracer_provider()``) per add otherwise.
``Queue.add``/``add_bulk`` run in a PRODUCER span whose context (W3C ``traceparent`` and
``tracestate``, as JSON) is stored with each job (hash field ``tc``); the worker runs the
processor in a CONSUMER span that continues that trace.
"""

from __future__ import annotations

import functools
import json
import sys
from collections.abc import Awaitable, Callable, Coroutine
from contextvars import ContextVar
from typing import Any, Concatenate, ParamSpec, TypeVar

TRACER_NAME = "glidemq"
_P = ParamSpec("_P")
_R = TypeVar("_R")
_S = TypeVar("_S")

# the trace context of the add being made in this task ("" outside a traced add)
_carrier: ContextVar[str] = ContextVar("glidemq_trace_carrier", default="")


def enabled() -> bool:
    """True when the application set an OpenTelemetry tracer provider.

    Looks only at modules already imported: glidemq never imports OpenTelemetry to find out.
    """
    api = sys.modules.get("opentelemetry.trace")
    if api is None:
        return False
    return not isinstance(api.get_tracer_provider(), api.ProxyTracerProvider)


def current_carrier() -> str:
    """The serialized trace context that jobs added now should carry ("" for none)."""
    return _carrier.get()


def traced_add(
    method: Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]],
) -> Callable[Concatenate[_S, _P], Coroutine[Any, Any, _R]]:
    """Runs a Queue's add method in a PRODUCER span when tracing is on."""

    @functools.wraps(method)
    async def wrapper(self: _S, /, *args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not enabled():
            return await method(self, *args, **kwargs)
        from opentelemetry import propagate, trace  # optional dependency, already imported by the app

        queue = str(getattr(self, "name", ""))
        tracer = trace.get_tracer(TRACER_NAME)
        attributes = {"messaging.system": "glidemq", "messaging.destination.name": queue,
                      "messaging.operation.type": "send"}
        with tracer.start_as_current_span(f"send {queue}", kind=trace.SpanKind.PRODUCER, attributes=attributes):
            carrier: dict[str, str] = {}
            propagate.inject(carrier)
            token = _carrier.set(json.dumps(carrier, separators=(",", ":")) if carrier else "")
            try:
                return await method(self, *args, **kwargs)
            finally:
                _carrier.reset(token)

    return wrapper


async def traced_process(queue: str, job: Any, carrier: bytes, run: Callable[[Any], Awaitable[Any]]) -> Any:
    """Runs ``run(job)`` in a CONSUMER span continuing the trace of the job's producer."""
    from opentelemetry import propagate, trace  # optional dependency

    try:
        context = propagate.extract(json.loads(carrier))
    except ValueError:
        context = None  # a damaged carrier: a span of its own rather than no span
    attributes = {"messaging.system": "glidemq", "messaging.destination.name": queue,
                  "messaging.operation.type": "process", "messaging.message.id": job.id,
                  "glidemq.job.name": job.name, "glidemq.job.attempt": job.attempts_made + 1}
    tracer = trace.get_tracer(TRACER_NAME)
    with tracer.start_as_current_span(f"process {queue}", context=context, kind=trace.SpanKind.CONSUMER,
                                      attributes=attributes):
        return await run(job)

