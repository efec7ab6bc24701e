"""Settings of the test project: the queue and server come from the environment."""

from __future__ import annotations

import os

SECRET_KEY = "glidemq-tests"
USE_TZ = True
INSTALLED_APPS: list[str] = []
DATABASES: dict[str, object] = {}
TASKS = {
    "default": {
        "BACKEND": "glidemq.contrib.django.GlideMQBackend",
        "QUEUES": [os.environ.get("DJANGO_TEST_QUEUE", "default")],
        "OPTIONS": {"CONNECTION": os.environ.get("GLIDEMQ_URL"), "JOB_OPTIONS": {"attempts": 1}},
    }
}
