"""Reading what a parent's children left: return values and failure reasons."""

from __future__ import annotations

from typing import Any

from ._codec import hash_to_dict, unpack
from ._context import QueueContext


async def children_outcomes(ctx: QueueContext, job_id: str) -> tuple[dict[str, Any], dict[str, str]]:
    """({child key: return value}, {child key: failure reason}) of the job ``job_id``.

    A child key is ``"<prefix>:<queue>:<child id>"``.
    """
    values, failures = await ctx.call("flow_children", [job_id])
    return (
        {key: unpack(value) for key, value in hash_to_dict(values).items()},
        {key: reason.decode() for key, reason in hash_to_dict(failures).items()},
    )
