"""How many jobs a worker holds beyond its concurrency when ``prefetch`` is left to it.

A worker of short jobs spends most of its time waiting for the server: with one job per
processor, a processor that finishes idles for a whole round trip before its next job
arrives. Holding a few jobs beyond ``concurrency`` hides that wait. Holding jobs costs
something too (they wait here while another worker may be idle, and a crash leaves them to
the stall check), so the worker holds only as many as its processors are expected to finish
during one round trip: none while a job takes longer than a call to the server, at most
``LIMIT_FACTOR * concurrency`` for jobs much shorter than one. When jobs turn long, the worker
hands back what it holds beyond twice the new size (``Worker``'s loop).
"""

from __future__ import annotations

LIMIT_FACTOR = 4
SMOOTHING = 1 / 16  # weight of the newest figure in the running means


class AutoPrefetch:
    """Running means of how long a job runs and how long a ``take`` call takes, and the
    number of jobs to hold beyond ``concurrency`` that follows from them (``extra``)."""

    __slots__ = ("call_seconds", "concurrency", "extra", "job_seconds", "limit")

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.limit = LIMIT_FACTOR * concurrency
        self.job_seconds: float | None = None  # None until timed
        self.call_seconds: float | None = None
        self.extra = 0

    def job_ran(self, seconds: float) -> None:
        """A processor ran one job for ``seconds`` (cheap: called for every job)."""
        mean = self.job_seconds
        self.job_seconds = seconds if mean is None else mean + (seconds - mean) * SMOOTHING

    def call_took(self, seconds: float) -> None:
        """A ``take`` call took ``seconds`` from sending to its reply; updates ``extra``."""
        mean = self.call_seconds
        self.call_seconds = mean = seconds if mean is None else mean + (seconds - mean) * SMOOTHING
        job = self.job_seconds
        if job is None:
            return
        # jobs the processors finish while one call is under way
        during_call = self.concurrency * mean / job if job > 0 else float(self.limit)
        self.extra = min(self.limit, int(during_call))
