from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path

import pytest

from app.execution.executor import JobSpec
from app.execution.local import MAX_LINE_BYTES, RESTART_MESSAGE, SHUTDOWN_MESSAGE, LocalExecutor
from app.execution.mlproject import parse_mlproject, render_command, validate_parameters
from app.jobs.status import JobStatus

SCRIPTS = {
    "ok.py": """
import os, sys
for i in range(200):
    print(f"out {i}")
    if i % 20 == 0:
        print(f"err {i // 20}", file=sys.stderr)
print("run_id", os.environ.get("MLFLOW_RUN_ID"), "secret", os.environ.get("MLPATRON_TEST_SECRET"))
print("python", sys.executable)
""",
    "fail.py": """
print("loading data")
print("about to fail")
raise SystemExit(3)
""",
    "slow.py": """
import signal, subprocess, sys, time
if "--ignore-term" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the grandchild too
child = subprocess.Popen(["sleep", "300"])
print(f"grandchild {child.pid}", flush=True)
time.sleep(300)
""",
    "argv.py": """
import json, os, sys
with open(os.environ["ARGV_OUT"], "w") as f:
    json.dump(sys.argv[1:], f)
""",
    "noisy.py": """
import sys
out = sys.stdout.buffer
out.write(b"x" * 200_000 + b"\\n")
out.write("caf\\u00e9 ".encode() * 20_000 + b"\\n")
out.write(b"bad \\xff\\xfe bytes\\r\\n")
out.write(b"no newline at end")
""",
}


@pytest.fixture
def code(make_repo):
    repo = make_repo(files=SCRIPTS)
    return str(repo.path), repo.git("rev-parse", "HEAD")


@pytest.fixture
async def executor(sink, tmp_path: Path):
    ex = LocalExecutor(sink, tmp_path / "work", grace_seconds=0.5)
    yield ex
    await ex.close()


def spec(code: tuple[str, str], command: str, *, deadline: int = 30, env: dict[str, str] | None = None) -> JobSpec:
    url, sha = code
    return JobSpec(
        job_id=f"job-{uuid.uuid4().hex[:8]}",
        run_id="run-1",
        kind="dryrun",
        repo_url=url,
        commit_sha=sha,
        command=command,
        env=env or {},
        deadline_seconds=deadline,
    )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for init to reap it is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


async def test_success_streams_logs_in_order(executor, sink, code, monkeypatch) -> None:
    monkeypatch.setenv("MLPATRON_TEST_SECRET", "platform-only")
    s = spec(code, "python ok.py", env={"MLFLOW_RUN_ID": "abc123"})
    handle = await executor.submit(s)
    assert handle["workdir"].endswith(s.job_id)

    final = await sink.terminal(s.job_id)
    assert final.status is JobStatus.SUCCEEDED and final.error is None
    assert sink.statuses(s.job_id) == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.SUCCEEDED]
    out = sink.lines(s.job_id, "stdout")
    assert out[:200] == [f"out {i}" for i in range(200)]
    assert out[200] == "run_id abc123 secret None"  # spec.env arrives, platform env does not
    assert Path(out[201].split(" ", 1)[1]).parent == Path(sys.executable).parent
    assert sink.lines(s.job_id, "stderr") == [f"err {i}" for i in range(10)]
    assert sink.events[-1] == ("update", final)  # every log line came before the terminal update
    await executor.close()
    assert not await asyncio.to_thread(os.path.exists, handle["workdir"])


async def test_nonzero_exit_fails_with_exit_code(executor, sink, code) -> None:
    s = spec(code, "python fail.py")
    await executor.submit(s)
    final = await sink.terminal(s.job_id)
    assert final.status is JobStatus.FAILED
    assert final.error is not None and final.error.platform is None
    assert final.error.container_terminated == {"reason": "Error", "exit_code": 3}
    assert sink.lines(s.job_id, "stdout")[-2:] == ["loading data", "about to fail"]
    assert sink.statuses(s.job_id) == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.FAILED]


async def test_killed_by_signal(executor, sink, code) -> None:
    s = spec(code, "exec python -c 'import os, signal; os.kill(os.getpid(), signal.SIGKILL)'")
    await executor.submit(s)
    final = await sink.terminal(s.job_id)
    assert final.error is not None
    assert final.error.container_terminated == {"reason": "Signal 9", "exit_code": 137}


async def test_deadline_fails_with_platform_error(executor, sink, code) -> None:
    s = spec(code, "python slow.py --ignore-term", deadline=1)
    started = time.monotonic()
    await executor.submit(s)
    await sink.wait_for(lambda: bool(sink.lines(s.job_id, "stdout")))
    grandchild = int(sink.lines(s.job_id, "stdout")[0].split()[1])
    final = await sink.terminal(s.job_id)
    assert time.monotonic() - started < 8
    assert final.status is JobStatus.FAILED
    assert final.error is not None
    assert final.error.platform == "deadline exceeded: job ran longer than its 1 s budget"
    assert not alive(grandchild)  # SIGTERM was ignored: SIGKILL after the grace period


async def test_cancel_kills_the_whole_tree(executor, sink, code) -> None:
    s = spec(code, "python slow.py")
    handle = await executor.submit(s)
    await sink.wait_for(lambda: bool(sink.lines(s.job_id, "stdout")))
    grandchild = int(sink.lines(s.job_id, "stdout")[0].split()[1])
    assert alive(grandchild)

    await executor.cancel(s.job_id, handle)  # returns once CANCELLED is reported
    assert sink.statuses(s.job_id) == [JobStatus.PENDING, JobStatus.RUNNING, JobStatus.CANCELLED]
    assert not alive(grandchild)

    await executor.cancel(s.job_id, handle)  # idempotent
    await executor.cancel("never-submitted", {})
    assert sink.statuses(s.job_id)[-1] is JobStatus.CANCELLED and len(sink.updates(s.job_id)) == 3


async def test_cancel_right_after_submit(executor, sink, code) -> None:
    s = spec(code, "python slow.py")
    handle = await executor.submit(s)
    await executor.cancel(s.job_id, handle)
    assert sink.statuses(s.job_id)[0] is JobStatus.PENDING
    assert sink.statuses(s.job_id)[-1] is JobStatus.CANCELLED


async def test_parameters_reach_the_script_verbatim(sink, code, tmp_path: Path) -> None:
    ex = LocalExecutor(sink, tmp_path / "work", grace_seconds=0.5, keep_workdirs=True)
    project = parse_mlproject(
        "entry_points:\n  main:\n"
        "    parameters: {a: string, b: string, c: string, d: string, e: string, n: {type: int, default: 2}}\n"
        "    command: python argv.py --a {a} --b={b} {c} -- {d} {e} --n {n}\n"
    )
    values = {
        "a": "two words  and\ttabs",
        "b": "it's \"quoted\" \\ back",
        "c": f"x; touch {tmp_path}/pwned; echo",
        "d": f"$(touch {tmp_path}/pwned) `touch {tmp_path}/pwned` && touch pwned",
        "e": "$HOME * ? [a] ~ | > out <in \n newline",
    }
    command = render_command(project.entry_point("main"), validate_parameters(project.entry_point("main"), values))
    argv_out = tmp_path / "argv.json"
    s = spec(code, command, env={"ARGV_OUT": str(argv_out)})
    handle = await ex.submit(s)
    final = await sink.terminal(s.job_id)
    await ex.close()

    assert final.status is JobStatus.SUCCEEDED, sink.lines(s.job_id, "stderr")
    expected = ["--a", values["a"], f"--b={values['b']}", values["c"], "--", values["d"], values["e"], "--n", "2"]
    assert json.loads(argv_out.read_text()) == expected
    workdir = Path(handle["workdir"])
    assert (workdir / "argv.py").exists()
    assert not (tmp_path / "pwned").exists() and not (workdir / "pwned").exists()
    assert not (workdir / "out").exists()


async def test_long_lines_and_bad_bytes(executor, sink, code) -> None:
    s = spec(code, "python noisy.py")
    await executor.submit(s)
    assert (await sink.terminal(s.job_id)).status is JobStatus.SUCCEEDED
    lines = sink.lines(s.job_id, "stdout")
    assert all(len(line.encode()) <= MAX_LINE_BYTES for line in lines)
    xs = [line for line in lines if line.startswith("x")]
    assert "".join(xs) == "x" * 200_000
    cafe = lines[len(xs) : -2]
    assert len(cafe) > 1
    assert "".join(cafe) == "caf\u00e9 " * 20_000  # pieces never split a UTF-8 character
    assert lines[-2:] == ["bad \ufffd\ufffd bytes", "no newline at end"]


async def test_checkout_failure_is_a_platform_error(executor, sink, code) -> None:
    s = spec((code[0], "0" * 40), "python ok.py")
    await executor.submit(s)
    final = await sink.terminal(s.job_id)
    assert final.status is JobStatus.FAILED
    assert final.error is not None and (final.error.platform or "").startswith("git checkout failed:")
    assert sink.statuses(s.job_id) == [JobStatus.PENDING, JobStatus.FAILED]


async def test_reconcile_after_restart_kills_survivors(sink, code, tmp_path: Path) -> None:
    old_sink, new_sink = sink, type(sink)()
    old = LocalExecutor(old_sink, tmp_path / "work", grace_seconds=0.5)
    s = spec(code, "python slow.py")
    handle = await old.submit(s)
    await old_sink.wait_for(lambda: bool(old_sink.lines(s.job_id, "stdout")))
    grandchild = int(old_sink.lines(s.job_id, "stdout")[0].split()[1])

    await old.reconcile([(s.job_id, handle)])  # a job this process owns is left alone
    assert old_sink.statuses(s.job_id) == [JobStatus.PENDING, JobStatus.RUNNING]
    assert alive(grandchild)

    # The "restarted" platform: a fresh executor that owns nothing finds the survivors.
    new = LocalExecutor(new_sink, tmp_path / "work", grace_seconds=0.5)
    await new.reconcile([(s.job_id, handle), ("job-gone", {"workdir": str(tmp_path / "work" / "job-gone")})])
    for job_id in (s.job_id, "job-gone"):
        [update] = new_sink.updates(job_id)
        assert update.status is JobStatus.FAILED
        assert update.error is not None and update.error.platform == RESTART_MESSAGE
    assert not alive(grandchild)
    assert (await old_sink.terminal(s.job_id)).status is JobStatus.FAILED  # its process is gone
    await old.close()
    await new.close()


async def test_close_stops_running_jobs(sink, code, tmp_path: Path) -> None:
    ex = LocalExecutor(sink, tmp_path / "work", grace_seconds=0.5)
    s = spec(code, "python slow.py")
    await ex.submit(s)
    await sink.wait_for(lambda: bool(sink.lines(s.job_id, "stdout")))
    grandchild = int(sink.lines(s.job_id, "stdout")[0].split()[1])
    await ex.close()
    final = sink.updates(s.job_id)[-1]
    assert final.status is JobStatus.FAILED
    assert final.error is not None and final.error.platform == SHUTDOWN_MESSAGE
    assert not alive(grandchild)
