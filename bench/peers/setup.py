"""Creates the peers' environments: one venv per Python peer, ``npm ci`` for BullMQ.

    python bench/peers/setup.py [--systems taskiq,arq,...] [--force]

Venvs go to bench/peers/.venvs/<system>/ (gitignored) with the pinned versions below;
BullMQ goes to bench/peers/node/node_modules/ from package.json and package-lock.json.
``run.py`` calls :func:`ensure` for what it needs, so running this by hand is optional.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
VENVS = HERE / ".venvs"
NODE_DIR = HERE / "node"

# Pinned versions of every Python peer (the packages they pull in are resolved by pip).
# Every asyncio-based peer also gets uvloop, as glidemq does (drivers/_common.py runs them on it).
UVLOOP = "uvloop==0.23.0"
PYTHON_PEERS: dict[str, list[str]] = {
    "taskiq": ["taskiq==0.13.0", "taskiq-redis==1.2.4", UVLOOP],
    "dramatiq": ["dramatiq[redis]==2.2.1"],
    "arq": ["arq==0.28.0", UVLOOP],
    "saq": ["saq[redis]==0.26.4", "typing-extensions", UVLOOP],  # saq imports typing-extensions without requiring it
    "rq": ["rq==3.0.0"],
    "celery": ["celery[redis]==5.7.0"],
    "bullmq-py": ["bullmq==3.4.4", UVLOOP],
    "streaq": ["streaq==7.2.0", UVLOOP],
}
NODE_PEERS = ("bullmq",)


def venv_python(system: str) -> Path:
    return VENVS / system / "bin" / "python"


def _stamp(system: str) -> Path:
    return VENVS / system / ".installed"


def ensure_python(system: str, force: bool = False) -> Path:
    """The venv's interpreter, creating the venv and installing the pins on first use."""
    pins = PYTHON_PEERS[system]
    stamp = _stamp(system)
    if not force and stamp.exists() and stamp.read_text() == "\n".join(pins):
        return venv_python(system)
    print(f"setting up {system}: {' '.join(pins)}", file=sys.stderr, flush=True)
    venv.EnvBuilder(with_pip=True, clear=True).create(VENVS / system)
    python = str(venv_python(system))
    subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check", *pins], check=True)
    stamp.write_text("\n".join(pins))
    return venv_python(system)


def ensure_node(force: bool = False) -> Path:
    """The node project directory, with ``npm ci`` run on first use."""
    if force or not (NODE_DIR / "node_modules" / "bullmq").is_dir():
        print("setting up bullmq: npm ci", file=sys.stderr, flush=True)
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=NODE_DIR, check=True)
    return NODE_DIR


def ensure(system: str, force: bool = False) -> None:
    if system in NODE_PEERS:
        ensure_node(force)
    elif system in PYTHON_PEERS:
        ensure_python(system, force)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="set up the peers' environments")
    every = [*NODE_PEERS, *PYTHON_PEERS]
    parser.add_argument("--systems", default=",".join(every), help="comma-separated peers")
    parser.add_argument("--force", action="store_true", help="recreate even if present")
    args = parser.parse_args(argv)
    failed: list[str] = []
    for system in args.systems.split(","):
        try:
            ensure(system, args.force)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"{system}: setup failed: {exc}", file=sys.stderr)
            failed.append(system)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
