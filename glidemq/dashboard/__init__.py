"""A web dashboard for glidemq queues, as an ASGI app (``pip install "glidemq[dashboard]"``).

```python
from glidemq.dashboard import create_app
app = create_app(connection="valkey://127.0.0.1:6379", read_only=False, auth=None)
```
Run it with uvicorn, mount it in FastAPI/Starlette (``app.mount("/jobs", create_app())``), or
start it with ``glidemq dashboard --port 8080``. Pages are server-rendered HTML that work
without JavaScript; actions are POST forms with a CSRF token. See docs/dashboard.md.
"""

try:
    import jinja2  # noqa: F401
    import starlette  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the installed extras
    raise ImportError('glidemq.dashboard needs its extra: pip install "glidemq[dashboard]"') from exc

from ._app import create_app

__all__ = ["create_app"]
