"""A platform killed with SIGKILL (or by the OOM killer) cannot stop its embedded servers: they
run in their own sessions and outlive it. The next start on the same data directory finds them
through `<data_dir>.pid`, stops them and starts its own, instead of silently sharing an orphan
nobody will stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.processes import alive

PREDECESSOR = """
import signal, sys
from pathlib import Path
from app.embedded.{module} import {cls}
server = {cls}(Path(sys.argv[1]))
server.start()
print(server.pid, flush=True)
signal.pause()
"""


@pytest.mark.parametrize(("module", "cls"), [("postgres", "EmbeddedPostgres"), ("redis", "EmbeddedRedis")])
def test_a_server_orphaned_by_a_killed_platform_is_stopped_by_the_next_start(work_dir: Path, module: str,
                                                                             cls: str) -> None:
    import importlib

    server_class = getattr(importlib.import_module(f"app.embedded.{module}"), cls)
    data_dir = work_dir / f"orphan-{module}-{uuid.uuid4().hex[:6]}"
    predecessor = subprocess.Popen([sys.executable, "-c", PREDECESSOR.format(module=module, cls=cls), str(data_dir)],
                                   cwd=ROOT, stdout=subprocess.PIPE, text=True)  # fmt: skip
    orphan = 0
    server = server_class(data_dir)
    try:
        assert predecessor.stdout is not None
        orphan = int(predecessor.stdout.readline())
        predecessor.send_signal(signal.SIGKILL)
        predecessor.wait()
        assert alive(orphan)  # what a killed platform leaves behind

        server.start()
        assert not alive(orphan)
        assert server.pid is not None and server.pid != orphan  # its own server, not the orphan shared
        assert server.is_ready()
    finally:
        server.stop()
        if orphan and alive(orphan):
            os.killpg(orphan, signal.SIGKILL)
    assert not data_dir.with_name(f"{data_dir.name}.pid").exists()
