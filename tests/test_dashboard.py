"""The web dashboard, through its ASGI app against the real test server."""

from __future__ import annotations

import contextlib
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.routing import Mount

import glidemq
from glidemq.dashboard import create_app
from glidemq.dashboard._data import PAGE_SIZE, throughput
from glidemq.queue import STATES
from glidemq.testing import EmbeddedValkey, EmbeddedValkeyCluster, free_port

from .dashboard_helpers import Page, fill, wait_counts

XSS = "<script>alert('x')</script>"


@contextlib.asynccontextmanager
async def browse(app: Any = None, **options: Any) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client talking to a dashboard app in process."""
    app = app if app is not None else create_app(**options)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client
    backend = app.state.glidemq if hasattr(app.state, "glidemq") else app.routes[0].app.state.glidemq
    await backend.close()


async def page(client: httpx.AsyncClient, path: str, **params: Any) -> Page:
    response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/html")
    return Page(response.text)


async def post(client: httpx.AsyncClient, form: Any, **overrides: str) -> httpx.Response:
    return await client.post(form.action, data={**form.fields, **overrides})


async def test_pages_show_the_counts_of_get_job_counts_without_javascript(
    url: str, qname: str, queue: glidemq.Queue
) -> None:
    await fill(queue, url)
    expected = await queue.get_job_counts()
    async with browse(connection=url, queues=[qname]) as client:
        home = await page(client, "/")
        one = await page(client, "/queue", name=qname)
        assert (await page(client, f"/queues/{qname}")).counts(qname) == one.counts(qname)
        feed = (await client.get("/api/summary", params={"queue": qname})).json()["queues"][0]
    for shown in (home.counts(qname), one.counts(qname), feed["counts"]):
        assert {state: shown[state] for state in STATES} == {state: expected[state] for state in STATES}
    assert feed["paused"] is False
    assert feed["completed_per_s"] > 0 and feed["failed_per_s"] > 0  # jobs finished within the last 10 s
    assert f"/queue?name={qname}" in " ".join(home.links)


async def test_throughput_counts_the_jobs_finished_in_the_window(url: str, queue: glidemq.Queue) -> None:
    assert await throughput(queue) == (0.0, 0.0)
    await fill(queue, url, completed=6, failed=3, delayed=0, waiting=0)
    completed, failed = await throughput(queue, window_ms=600_000)
    assert (completed * 600, failed * 600) == (pytest.approx(6), pytest.approx(3))
    completed, failed = await throughput(queue, window_ms=600_000, max_entries=1)  # over the entries' span
    assert completed + failed > 0


async def test_every_queue_under_the_prefix_unless_a_list_restricts(url: str, qname: str) -> None:
    for name in (f"{qname}-a", f"{qname}-b"):
        async with glidemq.Queue(name, connection=url) as q:
            await q.add("x", 1)
    async with browse(connection=url) as client:
        shown = {q for q, _ in (await page(client, "/")).live}
        assert {f"{qname}-a", f"{qname}-b"} <= shown
    async with browse(connection=url, queues=[f"{qname}-b"]) as client:
        assert {q for q, _ in (await page(client, "/")).live} == {f"{qname}-b"}
        assert (await client.get("/queue", params={"name": f"{qname}-a"})).status_code == 404
        assert (await client.get("/api/summary", params={"queue": f"{qname}-a"})).status_code == 404


async def test_paging_goes_through_the_jobs_in_run_order(url: str, qname: str, queue: glidemq.Queue) -> None:
    jobs = await queue.add_bulk([("n", i) for i in range(PAGE_SIZE * 2 + 5)])
    ids = [job.id for job in jobs]

    def ids_on(p: Page) -> list[str]:
        return [link.split("id=")[1] for link in p.links if link.startswith("/job?")]

    async with browse(connection=url, queues=[qname]) as client:
        first = await page(client, "/queue", name=qname, state="waiting")
        last = await page(client, "/queue", name=qname, state="waiting", page="3")
        beyond = await page(client, "/queue", name=qname, state="waiting", page="9")
        assert ids_on(first) == ids[:PAGE_SIZE]
        assert ids_on(last) == ids[PAGE_SIZE * 2 :]
        assert ids_on(beyond) == []
        assert any("page=2" in link for link in first.links)
        assert not any("page=4" in link for link in last.links)
        for bad in ("0", "-1", "x"):
            assert (await client.get("/queue", params={"name": qname, "page": bad})).status_code == 400
        assert (await client.get("/queue", params={"name": qname, "state": "lost"})).status_code == 400


async def test_search_by_name_or_id(url: str, qname: str, queue: glidemq.Queue) -> None:
    alphas = await queue.add_bulk([("send-alpha", i) for i in range(3)])
    await queue.add_bulk([("send-beta", i) for i in range(4)])
    async with browse(connection=url, queues=[qname]) as client:
        found = await page(client, "/queue", name=qname, q="ALPHA")
        job_links = [link for link in found.links if link.startswith("/job?")]
        assert sorted(job_links) == sorted(f"/job?queue={qname}&id={job.id}" for job in alphas)
        by_id = await client.get("/queue", params={"name": qname, "q": alphas[1].id})
        assert f"/job?queue={qname}&amp;id={alphas[1].id}" in by_id.text
        assert "is waiting" in by_id.text
        nothing = await client.get("/queue", params={"name": qname, "q": "gamma"})
        assert "No waiting jobs matching" in nothing.text


async def test_job_detail_shows_everything_known(url: str, qname: str, queue: glidemq.Queue) -> None:
    await fill(queue, url, completed=1, failed=1, delayed=0, waiting=0)
    (done,) = await queue.get_jobs("completed")
    (failed,) = await queue.get_jobs("failed")
    async with browse(connection=url, queues=[qname]) as client:
        ok = (await client.get("/job", params={"queue": qname, "id": done.id})).text
        bad = (await client.get("/job", params={"queue": qname, "id": failed.id})).text
        by_path = (await client.get(f"/queues/{qname}/jobs/{failed.id}")).text
        assert by_path == bad
        assert (await client.get(f"/queues/{qname}/jobs/nope")).status_code == 404
        assert (await client.get("/job", params={"queue": qname, "id": "nope"})).status_code == 404
        assert (await client.get("/job", params={"queue": qname, "id": "a:b"})).status_code == 404
    assert "&#34;echo&#34;: 0" in ok and f"handled {done.id}" in ok and ">100<" in ok
    assert "1 made of 1" in ok and re.search(r"added</dt><dd>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} UTC", ok)
    assert "finished</dt><dd>2" in ok
    assert "bad &lt;b&gt;job&lt;/b&gt;" in bad
    assert "Stack trace" in bad and "ValueError" in bad and "in process" in bad


async def test_actions_take_effect_on_the_queue(url: str, qname: str, queue: glidemq.Queue) -> None:
    await fill(queue, url, completed=2, failed=3, delayed=2, waiting=1)
    failed = await queue.get_jobs("failed")
    delayed = await queue.get_jobs("delayed")
    async with browse(connection=url, queues=[qname]) as client:
        home = await page(client, "/")
        reply = await post(client, home.form("pause", queue=qname))
        assert reply.status_code == 303 and reply.headers["location"].startswith("/?done=pause")
        assert await queue.is_paused()
        shown = await page(client, "/queue", name=qname)
        await post(client, shown.form("resume", queue=qname))
        assert not await queue.is_paused()

        job_page = await page(client, "/job", queue=qname, id=failed[0].id)
        reply = await post(client, job_page.form("retry", job=failed[0].id))
        assert reply.headers["location"] == f"/job?queue={qname}&id={failed[0].id}&done=retry"
        assert await failed[0].get_state() == "waiting"
        assert "Job moved back to waiting." in (await client.get(reply.headers["location"])).text

        listed = await page(client, "/queue", name=qname, state="delayed")
        await post(client, listed.form("promote", job=delayed[0].id))
        assert await delayed[0].get_state() == "waiting"
        await post(client, listed.form("remove", job=delayed[1].id))
        assert await queue.get_job(delayed[1].id) is None

        failed_tab = await page(client, "/queue", name=qname, state="failed")
        reply = await post(client, failed_tab.form("retry-all", state="failed"))
        assert "n=2" in reply.headers["location"]
        await wait_counts(queue, failed=0)

        completed_tab = await page(client, "/queue", name=qname, state="completed")
        reply = await post(client, completed_tab.form("clean", state="completed"), grace="0")
        assert (await queue.get_job_counts())["completed"] == 0
        assert "2 job(s) removed." in (await client.get(reply.headers["location"])).text


async def test_failed_actions_answer_with_the_reason(url: str, qname: str, queue: glidemq.Queue) -> None:
    waiting = await queue.add("n", 1)
    async with browse(connection=url, queues=[qname]) as client:
        form = (await page(client, "/queue", name=qname)).form("remove", job=waiting.id)
        wrong = await post(client, form, job="missing")
        assert wrong.status_code == 404
        removed = await post(client, form)
        assert removed.status_code == 303
        again = await client.post(form.action.replace("remove", "retry"), data=form.fields)
        assert again.status_code == 404  # removed by the first post
        job = await queue.add("m", 2)
        retry_waiting = await client.post(form.action.replace("remove", "retry"), data={**form.fields, "job": job.id})
        assert retry_waiting.status_code == 409 and "not failed or completed" in retry_waiting.text
        clean = (await page(client, "/queue", name=qname)).form("clean")
        assert (await post(client, clean, grace="-5")).status_code == 400
        assert (await post(client, clean, grace="soon")).status_code == 400
        assert (await post(client, clean, state="active")).status_code == 400
        assert (await client.post("/actions/obliterate", data=clean.fields)).status_code == 404
    assert await job.get_state() == "waiting"


async def test_actions_need_the_csrf_token_of_the_browser(url: str, qname: str, queue: glidemq.Queue) -> None:
    async with browse(connection=url, queues=[qname]) as client:
        form = (await page(client, "/queue", name=qname)).form("pause")
        assert len(form.fields["csrf_token"]) >= 32
        assert (await post(client, form, csrf_token="")).status_code == 403
        assert (await post(client, form, csrf_token="x" * 43)).status_code == 403
        assert (await client.post(form.action, json=form.fields)).status_code == 415
        client.cookies.clear()
        assert (await post(client, form)).status_code == 403  # a token without its cookie
    assert not await queue.is_paused()


async def test_read_only_hides_and_refuses_every_action(url: str, qname: str, queue: glidemq.Queue) -> None:
    await fill(queue, url, completed=1, failed=1, delayed=1, waiting=1)
    (failed,) = await queue.get_jobs("failed")
    async with browse(connection=url, queues=[qname]) as client:
        retry = (await page(client, "/queue", name=qname, state="failed")).form("retry", job=failed.id)
    async with browse(connection=url, queues=[qname], read_only=True) as client:
        for path, params in [("/", {}), ("/queue", {"name": qname, "state": "failed"}),
                             ("/job", {"queue": qname, "id": failed.id})]:
            shown = await page(client, path, **params)
            assert [f for f in shown.forms if f.method == "post"] == []
            assert "read-only" in (await client.get(path, params=params)).text
        token = client.cookies["glidemq_dashboard_csrf"]
        for action in ("retry", "remove", "pause", "retry-all", "clean"):
            fields = {**retry.fields, "csrf_token": token, "state": "failed"}
            reply = await client.post(f"/actions/{action}", data=fields)
            assert reply.status_code == 403
    assert await failed.get_state() == "failed" and not await queue.is_paused()


async def test_auth_hook_is_asked_about_every_request(url: str, qname: str, queue: glidemq.Queue) -> None:
    seen: list[str] = []

    async def only_admins(request: Request) -> bool:
        seen.append(request.url.path)
        return request.headers.get("x-user") == "admin"

    async with browse(connection=url, queues=[qname], auth=only_admins) as client:
        admin = {"x-user": "admin"}
        form = Page((await client.get("/queue", params={"name": qname}, headers=admin)).text).form("pause")
        for path in ("/", "/queue", "/api/summary", "/static/dashboard.css"):
            assert (await client.get(path, params={"name": qname})).status_code == 403
        assert (await client.post(form.action, data=form.fields)).status_code == 403
        assert not await queue.is_paused()
        assert (await client.post(form.action, data=form.fields, headers=admin)).status_code == 303
        assert await queue.is_paused()
    assert "/actions/pause" in seen and "/static/dashboard.css" in seen

    def basic(request: Request) -> bool:
        if request.headers.get("authorization") != "Basic b3BzOnNlY3JldA==":
            raise HTTPException(401, "log in", headers={"WWW-Authenticate": 'Basic realm="glidemq"'})
        return True

    async with browse(connection=url, queues=[qname], auth=basic) as client:
        refused = await client.get("/")
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == 'Basic realm="glidemq"'
        assert (await client.get("/", auth=("ops", "secret"))).status_code == 200


async def test_user_input_is_escaped_everywhere(url: str, qname: str) -> None:
    name = f"{qname}<img src=x onerror=alert(1)>&/'\""
    async with glidemq.Queue(name, connection=url) as q:
        job = await q.add(XSS, {"html": XSS, XSS: "</pre>" + XSS})
        await job.log(XSS)
        async with browse(connection=url, queues=[name]) as client:
            texts = [
                (await client.get("/")).text,
                (await client.get("/queue", params={"name": name, "q": XSS})).text,
                (await client.get("/queue", params={"name": name, "q": job.id})).text,
                (await client.get("/job", params={"queue": name, "id": job.id})).text,
                (await client.get("/job", params={"queue": name, "id": XSS})).text,
            ]
            form = Page(texts[3]).form("remove", queue=name)
            assert (await post(client, form)).status_code == 303
        assert await q.get_job(job.id) is None
    for text in texts:
        assert "<script>alert" not in text and "<img src=x" not in text
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in texts[3]
    assert "&lt;img src=x onerror=alert(1)&gt;" in texts[0]


async def test_security_headers_and_cookie(url: str, qname: str) -> None:
    async with browse(connection=url, queues=[qname]) as client:
        reply = await client.get("/")
    assert "script-src 'self'" in reply.headers["content-security-policy"]
    assert reply.headers["x-frame-options"] == "DENY"
    cookie = reply.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie


async def test_mounted_under_a_path(url: str, qname: str, queue: glidemq.Queue) -> None:
    dashboard = create_app(connection=url, queues=[qname])
    outer = Starlette(routes=[Mount("/admin/jobs", app=dashboard)])
    async with browse(outer) as client:
        home = await client.get("/admin/jobs/")
        assert home.status_code == 200
        shown = Page(home.text)
        assert f"/admin/jobs/queue?name={qname}" in shown.links
        assert 'href="/admin/jobs/static/dashboard.css"' in home.text
        assert "path=/admin/jobs" in home.headers["set-cookie"].lower()
        assert (await client.get("/admin/jobs/static/dashboard.js")).status_code == 200
        form = shown.form("pause", queue=qname)
        assert form.action == "/admin/jobs/actions/pause"
        reply = await post(client, form)
        assert reply.status_code == 303 and reply.headers["location"].startswith("/admin/jobs/?done=pause")
    assert await queue.is_paused()


async def test_one_connection_for_every_queue_shown() -> None:
    with EmbeddedValkey() as own:
        for i in range(6):
            async with glidemq.Queue(f"q{i}", connection=own.url) as q:
                await q.add("n", i)
        async with browse(connection=own.url) as client:
            home = await page(client, "/")
            assert {q for q, _ in home.live} == {f"q{i}" for i in range(6)}
            await page(client, "/queue", name="q3")
            async with glidemq.Queue("q0", connection=own.url) as q:
                listing = await q._ctx.client.command(["CLIENT", "LIST"])
        names = re.findall(r"name=(\S+)", listing.decode())
        assert names.count("glidemq-dashboard") == 1, names


async def test_on_a_cluster(cluster: EmbeddedValkeyCluster, qname: str) -> None:
    names = [f"{qname}-{i}" for i in range(4)]  # on different primaries
    for i, name in enumerate(names):
        async with glidemq.Queue(name, connection=cluster.url) as q:
            await q.add_bulk([("n", j) for j in range(i + 1)])
    async with browse(connection=cluster.url) as client:
        home = await page(client, "/")
        assert {name: home.counts(name)["waiting"] for name in names} == {name: i + 1 for i, name in enumerate(names)}
        shown = await page(client, "/queue", name=names[3])
        assert len([link for link in shown.links if link.startswith("/job?")]) == 4


async def test_unreachable_server_answers_503_without_the_password() -> None:
    down = glidemq.Connection(f"valkey://ops:hunter2@127.0.0.1:{free_port()}", request_timeout=0.3)
    async with browse(connection=down) as client:
        for path, params in [("/", {}), ("/queue", {"name": "emails"}), ("/api/summary", {})]:
            reply = await client.get(path, params=params)
            assert reply.status_code == 503 and "unreachable" in reply.text and "hunter2" not in reply.text


def test_import_glidemq_reaches_the_dashboard() -> None:
    code = "import glidemq, sys; assert 'glidemq.dashboard' not in sys.modules; print(glidemq.dashboard.create_app)"
    shown = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert shown.returncode == 0 and "create_app" in shown.stdout, shown.stderr


def test_bad_arguments_raise_invalid_argument_error() -> None:
    for options in ({"queues": ["a:b"]}, {"queues": "emails"}, {"queues": [""]}, {"prefix": "{x}"},
                    {"auth": "admin"}, {"connection": "http://nowhere"}):
        with pytest.raises(glidemq.InvalidArgumentError):
            create_app(**options)


async def test_command_line_serves_the_dashboard(url: str, qname: str, queue: glidemq.Queue) -> None:
    await queue.add("n", 1)
    proc = subprocess.Popen(
        [sys.executable, "-m", "glidemq.cli", "dashboard", "--port", "0", "--url", url, "--read-only"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("glidemq dashboard on http://127.0.0.1:") and "(read-only)" in line, line
        base = line.split()[3]
        async with httpx.AsyncClient(base_url=base) as client:
            shown = await page(client, "/queue", name=qname)
            assert shown.counts(qname)["waiting"] == 1
            assert (await client.post("/actions/pause", data={"queue": qname})).status_code == 403
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0
    bad = subprocess.run([sys.executable, "-m", "glidemq.cli", "dashboard", "--port", "70000"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2 and "65535" in bad.stderr
