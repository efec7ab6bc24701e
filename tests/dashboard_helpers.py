"""Helpers of the dashboard tests: fill a queue with jobs in every state, read the pages' HTML."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from typing import Any

import glidemq


@dataclass
class Form:
    """One form of a page: where it posts and its fields."""

    action: str
    method: str
    fields: dict[str, str] = field(default_factory=dict)


class Page(HTMLParser):
    """What the tests read from a page: live values by (queue, field), forms, links, text."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.live: dict[tuple[str, str], str] = {}
        self.forms: list[Form] = []
        self.links: list[str] = []
        self._open: tuple[str, str] | None = None
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if "data-field" in a:
            self._open = (a["data-queue"], a["data-field"])
            self.live[self._open] = ""
        elif tag == "form":
            self.forms.append(Form(a.get("action", ""), a.get("method", "get").lower()))
        elif tag == "input" and self.forms and a.get("name"):
            self.forms[-1].fields[a["name"]] = a.get("value", "")
        elif tag == "a" and "href" in a:
            self.links.append(a["href"])

    def handle_endtag(self, tag: str) -> None:
        if tag == "span":
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self.live[self._open] += data

    def counts(self, queue: str) -> dict[str, int]:
        """The counts a page shows for one queue, by state."""
        return {state: int(value) for (q, state), value in self.live.items() if q == queue and value.isdigit()}

    def form(self, action: str, **fields: str) -> Form:
        """The POST form for ``/actions/<action>`` whose hidden fields include ``fields``."""
        for form in self.forms:
            if form.method == "post" and form.action.endswith(f"/actions/{action}"):
                if all(form.fields.get(k) == v for k, v in fields.items()):
                    return form
        raise AssertionError(f"no {action} form with {fields} in {[f.action for f in self.forms]}")


async def process(job: glidemq.Job) -> Any:
    """Fails jobs whose data is "bad"; logs a line and echoes the data otherwise."""
    if job.data == "bad":
        raise ValueError("bad <b>job</b>")
    await job.log(f"handled {job.id}")
    await job.update_progress(100)
    return {"echo": job.data}


async def wait_counts(queue: glidemq.Queue, timeout: float = 20, **expected: int) -> None:
    """Waits until the queue's counts include ``expected`` (keyword names use _ for -)."""
    want = {k.replace("_", "-"): v for k, v in expected.items()}
    deadline = time.monotonic() + timeout
    while True:
        counts = await queue.get_job_counts()
        if all(counts[k] == v for k, v in want.items()):
            return
        assert time.monotonic() < deadline, f"counts stayed {counts}, expected {want}"
        await asyncio.sleep(0.05)


async def fill(queue: glidemq.Queue, url: str, *, completed: int = 3, failed: int = 2, delayed: int = 1,
               waiting: int = 4) -> None:
    """Puts jobs into the queue in every state but active."""
    await queue.add_bulk([("ok", i) for i in range(completed)] + [("boom", "bad") for _ in range(failed)])
    async with glidemq.Worker(queue.name, process, connection=url, prefix=queue.prefix, concurrency=5):
        await wait_counts(queue, completed=completed, failed=failed)
    await queue.add_bulk([("later", i, {"delay": 3600}) for i in range(delayed)])
    await queue.add_bulk([("next", i) for i in range(waiting)])
