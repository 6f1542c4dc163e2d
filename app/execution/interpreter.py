"""What a local job's Python is: its version and every installed distribution, asked of the
interpreter itself (the job may run another Python than the platform's), once per job."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import shutil
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

PROBE_TIMEOUT_SECONDS = 30.0
# First distribution of a name wins: the one `import` finds (sys.path order), as pip freeze says.
_PROBE = """
import importlib.metadata as md, json, platform
found = {}
for dist in md.distributions():
    name = dist.metadata["Name"]
    if name and name.lower() not in found:
        found[name.lower()] = [name, dist.version]
print(json.dumps({"python": platform.python_version(), "pythonImplementation": platform.python_implementation(),
                  "packages": sorted(found.values(), key=lambda p: p[0].lower())}))
"""


def job_python(env: dict[str, str]) -> str | None:
    """The interpreter `python` names on the job's PATH (what `python train.py` runs)."""
    path = env.get("PATH")
    return shutil.which("python", path=path) or shutil.which("python3", path=path)


async def describe_python(python: str, env: dict[str, str], cwd: Path) -> dict[str, Any] | None:
    """{"python": "3.12.3", "pythonImplementation": "CPython", "packages": [[name, version], …]};
    None (logged) when the interpreter cannot say. `cwd` should not be the checkout: a module
    there (a `json.py`) would shadow the probe's imports."""
    try:
        proc = await asyncio.create_subprocess_exec(
            python, "-c", _PROBE, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
    except OSError as exc:
        log.warning("cannot start %s to describe it: %s", python, exc)
        return None
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            out, err = await proc.communicate()
    except TimeoutError:
        log.warning("%s did not describe itself within %.0f s", python, PROBE_TIMEOUT_SECONDS)
        return None
    finally:  # timed out, or the job ended first: the probe goes with it
        if proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    if proc.returncode != 0:
        log.warning("%s could not describe itself: %s", python, err.decode("utf-8", "replace")[-500:])
        return None
    try:
        facts = json.loads(out)
    except ValueError:
        log.warning("%s described itself in something other than JSON", python)
        return None
    return facts if isinstance(facts, dict) else None
