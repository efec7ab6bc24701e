"""glidemq for synchronous code: ``Queue``, ``Job`` and ``Worker`` without ``await``.

They drive the async objects on one background event loop per process, so they share the
codec, validation, keys and server functions with the async API: jobs written by one are
the same jobs for the other.

```python
from glidemq.sync import Queue, Worker
with Queue("emails") as q:
    job = q.add("send", {"to": "a@b.c"})
    job.wait_until_finished(timeout=10)
```
"""

from ._job import Job
from ._processes import JobSnapshot, ProcessDiedError
from ._queue import Queue
from ._worker import Worker

__all__ = ["Job", "JobSnapshot", "ProcessDiedError", "Queue", "Worker"]
