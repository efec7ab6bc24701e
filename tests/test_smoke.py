"""The shortest end-to-end path: add a job, a worker runs it, the result comes back."""

import glidemq


async def test_job_runs_and_returns(url: str, qname: str) -> None:
    async def double(job: glidemq.Job) -> int:
        return int(job.data["n"]) * 2

    async with glidemq.Queue(qname, connection=url) as queue:
        job = await queue.add("double", {"n": 21})
        async with glidemq.Worker(qname, double, connection=url):
            assert await job.wait_until_finished(timeout=10) == 42
        assert await job.get_state() == "completed"
