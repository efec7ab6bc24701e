"""The dashboard end to end: the ``glidemq dashboard`` command, driven in headless Chromium by Playwright.

Needs Debian's chromium (``apt-get install -y chromium``; ``.ci/run`` installs it) or the browser
named by ``GLIDEMQ_CHROMIUM``. ``GLIDEMQ_SCREENSHOTS=docs/img`` keeps the screenshots (the docs' pictures).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from playwright.async_api import Browser, Page, async_playwright, expect

import glidemq
from glidemq.testing import EmbeddedValkey

from .dashboard_helpers import fill, process, wait_counts

LIVE_TIMEOUT_MS = 15_000
# one dashboard process and one browser for the module's tests, each test with queues of its own
pytestmark = pytest.mark.asyncio(loop_scope="module")


def chromium_path() -> str:
    """The Chromium to drive; fails the test (never skips it) when there is none."""
    path = os.environ.get("GLIDEMQ_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not os.access(path, os.X_OK):
        pytest.fail(
            f"no Chromium at {path}: the dashboard's browser tests need it. "
            "Install Debian's package (apt-get install -y chromium) or set GLIDEMQ_CHROMIUM.",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="module")
def prefix() -> str:
    """A key prefix of the module's own, so the queues can have plain names."""
    return "shots" + uuid.uuid4().hex[:8]


@pytest.fixture(scope="module")
def dashboard(server: EmbeddedValkey, prefix: str) -> Iterator[str]:
    """The base URL of a ``glidemq dashboard`` process serving the prefix's queues."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "glidemq.cli", "dashboard", "--port", "0", "--url", server.url, "--prefix", prefix],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("glidemq dashboard on http://"), line + (proc.stderr.read() if proc.stderr else "")
        yield line.split()[3].rstrip("/")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def browser() -> AsyncIterator[Browser]:
    executable = chromium_path()
    async with async_playwright() as pw:
        chromium = await pw.chromium.launch(executable_path=executable)
        yield chromium
        await chromium.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    """Where screenshots go: GLIDEMQ_SCREENSHOTS, else a temporary folder."""
    folder = Path(os.environ.get("GLIDEMQ_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def live(page: Page, queue: str, field: str):  # type: ignore[no-untyped-def]
    return page.locator(f'[data-queue="{queue}"][data-field="{field}"]').first


async def test_pages_show_the_queues_counts_and_take_screenshots(
    url: str, prefix: str, dashboard: str, browser: Browser, shots: Path
) -> None:
    queues = {}
    for name, sizes in (("emails", (37, 4, 2, 12)), ("reports", (8, 1, 0, 3)), ("thumbnails", (21, 0, 1, 30))):
        queues[name] = glidemq.Queue(name, connection=url, prefix=prefix)
        completed, failed, delayed, waiting = sizes
        await fill(queues[name], url, completed=completed, failed=failed, delayed=delayed, waiting=waiting)
    try:
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        await page.goto(dashboard + "/")
        for name, queue in queues.items():
            counts = await queue.get_job_counts()
            for state in ("waiting", "delayed", "completed", "failed"):
                await expect(live(page, name, state)).to_have_text(str(counts[state]))
        await page.screenshot(path=str(shots / "dashboard-queues.png"))

        await page.get_by_role("link", name="emails", exact=True).click()
        await page.locator(".tabs a", has_text="failed").click()
        await expect(page.locator("table.jobs tbody tr")).to_have_count(4)
        assert "bad <b>job</b>" in await page.locator("table.jobs").inner_text()
        await page.screenshot(path=str(shots / "dashboard-queue.png"))

        await page.locator("table.jobs tbody tr a").first.click()
        await expect(page.locator("h1")).to_contain_text("failed")
        await expect(page.locator("pre.trace").first).to_contain_text("ValueError")

        emails = queues["emails"]
        welcome = await emails.add("send-welcome", {"to": "ada@example.com", "template": "welcome", "locale": "en"})
        async with glidemq.Worker("emails", process, connection=url, prefix=prefix):
            await welcome.wait_until_finished(timeout=20)
        await page.goto(f"{dashboard}/job?queue=emails&id={welcome.id}")
        await expect(page.locator("pre.logs")).to_have_text(f"handled {welcome.id}")
        await expect(page.locator("pre.value").nth(1)).to_contain_text('"echo"')
        await page.screenshot(path=str(shots / "dashboard-job.png"), full_page=True)
    finally:
        for queue in queues.values():
            await queue.obliterate(force=True)
            await queue.close()


async def test_clicking_actions_changes_the_queue(url: str, prefix: str, dashboard: str, browser: Browser) -> None:
    async with glidemq.Queue("orders", connection=url, prefix=prefix) as queue:
        await fill(queue, url, completed=1, failed=2, delayed=1, waiting=0)
        failed = await queue.get_jobs("failed")
        page = await browser.new_page()
        page.on("dialog", lambda dialog: dialog.accept())
        await page.goto(f"{dashboard}/queue?name=orders&state=failed")

        await page.locator(f'tr[data-job="{failed[0].id}"]').get_by_role("button", name="Retry").click()
        await expect(page.locator(".notice")).to_have_text("Job moved back to waiting.")
        assert await failed[0].get_state() == "waiting"

        await page.get_by_role("button", name="Pause queue").click()
        await expect(live(page, "orders", "paused")).to_have_text("paused")
        assert await queue.is_paused()

        await page.goto(f"{dashboard}/queue?name=orders&state=failed")
        await page.locator(f'tr[data-job="{failed[1].id}"]').get_by_role("button", name="Remove").click()  # confirmed
        await expect(page.locator(".notice")).to_have_text("Job removed.")
        assert await queue.get_job(failed[1].id) is None


async def test_counts_refresh_live_and_pages_work_without_javascript(
    url: str, prefix: str, dashboard: str, browser: Browser
) -> None:
    async with glidemq.Queue("signups", connection=url, prefix=prefix) as queue:
        await queue.add_bulk([("send", i) for i in range(3)])
        page = await browser.new_page()
        await page.goto(dashboard + "/queue?name=signups")
        await expect(live(page, "signups", "waiting")).to_have_text("3")
        await queue.add_bulk([("send", i) for i in range(4)])
        await expect(live(page, "signups", "waiting")).to_have_text("7", timeout=LIVE_TIMEOUT_MS)
        async with glidemq.Worker("signups", process, connection=url, prefix=prefix, concurrency=4):
            await wait_counts(queue, completed=7)
            await expect(live(page, "signups", "completed")).to_have_text("7", timeout=LIVE_TIMEOUT_MS)

        context = await browser.new_context(java_script_enabled=False)
        static = await context.new_page()
        await static.goto(dashboard + "/")
        for _ in range(40):  # the queues page finds new queues within DISCOVERY_TTL
            if await live(static, "signups", "completed").count():
                break
            await asyncio.sleep(0.5)
            await static.reload()
        await expect(live(static, "signups", "completed")).to_have_text("7")
        await static.goto(dashboard + "/queue?name=signups")
        await static.get_by_role("button", name="Pause queue").click()
        await expect(static.locator(".notice")).to_have_text("Queue paused.")
        assert await queue.is_paused()
        await context.close()
