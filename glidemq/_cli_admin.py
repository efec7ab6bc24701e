"""``glidemq doctor`` and ``glidemq load-library``: server checks and the admin's library load."""

from __future__ import annotations

import argparse
import warnings

from glide import AllPrimaries, GlideClusterClient, GlideError

from ._cli_common import EXIT_ERROR, connection_url, shown
from ._client import Client
from ._loop import run as run_loop
from .connection import resolve
from .errors import ServerError
from .functions import LIBRARY_NAME, library_source
from .health import Health, health


def _yes_no(value: bool | None) -> str:
    return "?" if value is None else ("on" if value else "off")


def format_health(result: Health) -> list[str]:
    """The lines ``glidemq doctor`` prints."""
    lines: list[str] = []
    for node in result.nodes:
        rdb = "?" if node.rdb_save is None else (repr(node.rdb_save) if node.rdb_save else "off")
        library = "?" if node.library_loaded is None else (LIBRARY_NAME if node.library_loaded else "not loaded")
        if node.libraries and not node.library_loaded:
            library += f" (found: {', '.join(node.libraries)})"
        lines.append(
            f"{node.address}  valkey {node.version or '?'}  role {node.role or '?'}  "
            f"aof {_yes_no(node.aof_enabled)} (appendfsync {node.appendfsync or '?'})  rdb save {rdb}  "
            f"maxmemory-policy {node.maxmemory_policy or '?'}  library {library}"
        )
    for text in result.warnings:
        lines.append(f"WARNING {text}")
    lines.append("healthy" if result.ok else f"unhealthy: {len(result.warnings)} warning(s)")
    return lines


def run_doctor_command(args: argparse.Namespace) -> int:
    """Prints every node's health; exit 0 when healthy, 1 otherwise."""
    url = connection_url(args.url)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the warnings are printed below, once
        result = run_loop(health(url))
    print(f"server {shown(url)}")
    print("\n".join(format_health(result)))
    return 0 if result.ok else EXIT_ERROR


async def load_library(url: str | None) -> str:
    """FUNCTION LOAD REPLACE of this release's library (on a cluster: on every primary).

    For deployments where the runtime user may not run FUNCTION LOAD. Returns where it went.
    """
    client = Client(resolve(url), name="glidemq-admin")
    try:
        glide = await client.raw()
        if isinstance(glide, GlideClusterClient):
            await glide.function_load(library_source(), replace=True, route=AllPrimaries())
            return "every primary"
        await glide.function_load(library_source(), replace=True)
        return "the server"
    except GlideError as exc:
        raise ServerError(f"FUNCTION LOAD failed: {exc}") from exc
    finally:
        await client.close()


def run_load_library_command(args: argparse.Namespace) -> int:
    """Loads the library; prints where."""
    url = connection_url(args.url)
    where = run_loop(load_library(url))
    print(f"library {LIBRARY_NAME} loaded on {where} of {shown(url)}")
    return 0
