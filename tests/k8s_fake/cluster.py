"""A simulated Kubernetes cluster: the fake API server plus a scheduler and kubelet that act by themselves.

    python -m tests.k8s_fake.cluster --port 0 --kubeconfig /tmp/sim/kubeconfig [--scenario file.yaml]

serves the wire protocol of `FakeKubernetes` (Jobs, Pods, Events, watches, log follow) on
127.0.0.1, writes a kubeconfig pointing at it, prints `READY <url>` and then plays every Job a
client creates:

1. the pod is Pending: optionally Unschedulable for a while (pod condition + FailedScheduling
   event, the way a busy GPU pool looks), then Scheduled;
2. the init container really runs: its own command (the platform's clone script) with its own
   environment, `WORKSPACE` pointing at a directory of this machine; its output is its log, a
   non-zero exit fails the pod like a failed clone;
3. image pull (Pulling/Pulled events, or ImagePullBackOff forever when the scenario says so);
4. the main container really runs: its command (`/bin/sh -c <rendered command>`) in the
   workspace, with the manifest's environment (MLFLOW_*, MLPATRON_*) and this machine's Python
   first on PATH (every image is "the local Python"); stdout and stderr, interleaved as a
   container runtime does, become the pod log; the exit code becomes the container's termination
   state and the Job's condition (Complete, or Failed/BackoffLimitExceeded).

The Job controller's `activeDeadlineSeconds` is enforced (from the Job's start, pending time
included): the process group is killed and the Job fails with DeadlineExceeded. Deleting a Job
(any propagation) kills its container. The scenario injects what a real cluster does to jobs:

    defaults: {pending_seconds: 0.3, pull_seconds: 0.2}
    rules:                                 # the first rule that matches a Job applies over defaults
      - match: {kind: funded, command_contains: "--note oom"}
        oom_after_seconds: 1.0             # the kubelet kills it: OOMKilled, exit 137
      - match: {kind: dryrun}
        unschedulable_seconds: 0.5         # "0/4 nodes are available: 4 Insufficient nvidia.com/gpu."
        deadline_seconds: 30               # instead of the manifest's activeDeadlineSeconds
        image_pull_backoff: false

`GET /_sim/created` answers every Job manifest exactly as clients sent it (for validation),
`GET /_sim/deletions` every Job deletion with its propagation policy; for the watcher benchmark
`GET /_sim/stats` counts requests by verb and resource and `GET /_sim/finished` says when each
Job's container ended. It stays in `tests/`: production never runs it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import httpx
import yaml
from aiohttp import web

from tests.api_process import ChildProcess
from tests.k8s_fake.server import FakeKubernetes

NODE = "sim-gpu-node-1"
# The synthetic containers' lines are all written by one timer of this period (each line when it is
# due, at most this late, stamped when written): 200 Jobs logging 50 lines/s each woke a task and
# a timer per line, 10,000 a second, a fifth of the simulator's CPU.
SYNTHETIC_TICK = 0.01
UNSCHEDULABLE = "0/4 nodes are available: 4 Insufficient nvidia.com/gpu. preemption: 0/4 nodes are available."


@dataclass(frozen=True)
class Behaviour:
    """What happens to one Job (see the module docstring)."""

    pending_seconds: float = 0.3
    unschedulable_seconds: float = 0.0
    pull_seconds: float = 0.2
    image_pull_backoff: bool = False
    oom_after_seconds: float | None = None
    deadline_seconds: float | None = None
    # The benchmark's containers: no clone, no process; `tick <unix time> <n>` lines at this rate
    # for this long, then exit 0 (a thousand Jobs cost the simulator little).
    synthetic_seconds: float | None = None
    synthetic_lines_per_second: float = 0.0


@dataclass
class _Synthetic:
    """A synthetic container writing its lines: line n is due `n / rate` seconds after `start`."""

    start: float
    rate: float
    lines: int
    done: asyncio.Future[None]
    written: int = 0


@dataclass(frozen=True)
class Rule:
    behaviour: dict[str, Any]
    kind: str | None = None
    command_contains: str | None = None

    def matches(self, job: dict[str, Any]) -> bool:
        labels = job["metadata"].get("labels") or {}
        command = " ".join(job["spec"]["template"]["spec"]["containers"][0].get("command") or [])
        return (self.kind is None or labels.get("mlpatron.io/kind") == self.kind) and (
            self.command_contains is None or self.command_contains in command
        )


@dataclass(frozen=True)
class Scenario:
    defaults: dict[str, Any] = field(default_factory=dict)
    rules: tuple[Rule, ...] = ()

    @classmethod
    def load(cls, path: str | None) -> Scenario:
        raw = yaml.safe_load(Path(path).read_text()) if path else {}
        known = {f.name for f in fields(Behaviour)}
        rules = []
        for entry in raw.get("rules") or []:
            match = entry.get("match") or {}
            behaviour = {k: v for k, v in entry.items() if k != "match"}
            if unknown := set(behaviour) - known:
                raise ValueError(f"unknown scenario keys {sorted(unknown)}")
            rules.append(Rule(behaviour, match.get("kind"), match.get("command_contains")))
        return cls(raw.get("defaults") or {}, tuple(rules))

    def behaviour(self, job: dict[str, Any]) -> Behaviour:
        rule = next((r for r in self.rules if r.matches(job)), None)
        return Behaviour(**{**self.defaults, **(rule.behaviour if rule else {})})


def _env(container: dict[str, Any], **extra: str) -> dict[str, str]:
    """The container's environment on this machine: no host variables leak in but a PATH."""
    python_bin = str(Path(sys.executable).parent)
    base = {"PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8"}
    return {**base, **{e["name"]: e.get("value", "") for e in container.get("env") or []}, **extra}


class Kubelet:
    """Plays scheduler, kubelet and Job controller for every Job created on `fake`."""

    def __init__(self, fake: FakeKubernetes, scenario: Scenario, work_dir: Path) -> None:
        self.fake = fake
        self.scenario = scenario
        self.work_dir = work_dir
        self._tasks: set[asyncio.Task[None]] = set()
        self._groups: set[int] = set()  # process groups of running containers
        self._deleted: dict[tuple[str, str], asyncio.Event] = {}  # pod → set when the pod is deleted
        self.finished: dict[str, float] = {}  # Job name → when its container ended (for the benchmark)
        self._synthetic_logs: dict[str, _Synthetic] = {}  # Job name → its synthetic container's log
        self._ticker: asyncio.Task[None] | None = None
        fake.job_created_hooks.append(self._job_created)
        fake.deleted_hooks.append(self._pod_deleted)

    def _job_created(self, job: dict[str, Any]) -> None:
        task = asyncio.get_running_loop().create_task(self._play(job))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _pod_deleted(self, resource: str, ns: str, name: str) -> None:
        if resource == "pods" and (ns, name) in self._deleted:
            self._deleted[(ns, name)].set()

    async def stop(self) -> None:
        for pgid in list(self._groups):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pgid, signal.SIGKILL)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _play(self, job: dict[str, Any]) -> None:
        name = job["metadata"]["name"]
        how = self.scenario.behaviour(job)
        deadline = how.deadline_seconds or job["spec"].get("activeDeadlineSeconds")
        pod = self.fake.pod(name)
        pod_key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        root = self.work_dir / pod_key[1]
        life = asyncio.create_task(self._pod_life(name, pod, how, root))
        deleted = self._deleted.setdefault(pod_key, asyncio.Event())
        gone = asyncio.create_task(deleted.wait())
        try:
            done, _ = await asyncio.wait([life, gone], timeout=deadline, return_when=asyncio.FIRST_COMPLETED)
            if not done:  # the Job controller's activeDeadlineSeconds
                life.cancel()
                await asyncio.gather(life, return_exceptions=True)
                with contextlib.suppress(LookupError):
                    self.fake.exceed_deadline(name)
            elif gone in done:  # deleted (cancel, TTL, kubectl): the kubelet kills the container
                life.cancel()
                await asyncio.gather(life, return_exceptions=True)
            else:
                life.result()
        finally:
            for task in (life, gone):
                task.cancel()
            await asyncio.gather(life, gone, return_exceptions=True)
            self._deleted.pop(pod_key, None)
            shutil.rmtree(root, ignore_errors=True)

    async def _pod_life(self, name: str, pod: dict[str, Any], how: Behaviour, root: Path) -> None:
        spec = pod["spec"]
        await asyncio.sleep(how.pending_seconds)
        if how.unschedulable_seconds:
            self.fake.unschedulable(name, UNSCHEDULABLE)
            await asyncio.sleep(how.unschedulable_seconds)
        self.fake.schedule(name, NODE)
        self.fake.event(name, "Scheduled", f"Successfully assigned {pod['metadata']['namespace']}/"
                        f"{pod['metadata']['name']} to {NODE}", component="default-scheduler")  # fmt: skip
        if how.synthetic_seconds is not None:
            self.fake.run(name)
            await self._synthetic(name, how.synthetic_seconds, how.synthetic_lines_per_second)
            self._finish(name, 0)
            return
        workspace, tmp = root / "workspace", root / "tmp"
        workspace.mkdir(parents=True)
        tmp.mkdir()
        for init in spec.get("initContainers") or []:
            env = _env(init, WORKSPACE=str(workspace), HOME=str(tmp), TMPDIR=str(tmp))
            code = await self._container(name, init, env, workspace, container_name=init["name"])
            if code != 0:
                self.fake.fail_clone(name, exit_code=code)
                return
        main = spec["containers"][0]
        self.fake.event(name, "Pulling", f'Pulling image "{main["image"]}"')
        if how.image_pull_backoff:
            self.fake.image_pull_backoff(name)
            self.fake.event(name, "Failed", f'Failed to pull image "{main["image"]}": not found', type="Warning")
            await asyncio.Event().wait()  # until the deadline or a deletion
        await asyncio.sleep(how.pull_seconds)
        self.fake.event(name, "Pulled", f'Successfully pulled image "{main["image"]}"')
        self.fake.event(name, "Started", "Started container main")
        self.fake.run(name)
        env = _env(main, HOME=str(tmp), TMPDIR=str(tmp))
        process = asyncio.create_task(self._container(name, main, env, workspace, container_name=main["name"]))
        if how.oom_after_seconds is not None:
            done, _ = await asyncio.wait([process], timeout=how.oom_after_seconds)
            if not done:  # the cgroup's memory limit: the kernel kills the whole container
                process.cancel()
                await asyncio.gather(process, return_exceptions=True)
                self.fake.oom_kill(name)
                return
        self._finish(name, await process)

    def _finish(self, name: str, exit_code: int) -> None:
        self.fake.finish(name, exit_code=exit_code)
        self.finished[name] = time.time()

    async def _synthetic(self, name: str, seconds: float, rate: float) -> None:
        """`tick <unix time> <n>` lines at `rate` for `seconds` (written by `_tick`), then return."""
        loop = asyncio.get_running_loop()
        start = loop.time()
        lines = sum(1 for n in range(int(rate * seconds) + 1) if rate and n / rate < seconds)
        if lines:
            self._synthetic_logs[name] = log = _Synthetic(start, rate, lines, loop.create_future())
            if self._ticker is None or self._ticker.done():
                self._ticker = loop.create_task(self._tick())
            try:
                await log.done
            finally:
                self._synthetic_logs.pop(name, None)
        await asyncio.sleep(max(0.0, start + seconds - loop.time()))

    async def _tick(self) -> None:
        """Write every synthetic container's due lines, each period, while any is writing."""
        loop = asyncio.get_running_loop()
        while self._synthetic_logs:
            now = loop.time()
            for name, log in list(self._synthetic_logs.items()):
                if log.done.done():
                    continue
                due = log.written
                while due < log.lines and log.start + due / log.rate <= now:
                    due += 1
                if due == log.written:
                    continue
                try:
                    wall = time.time()
                    self.fake.log(name, *(f"tick {wall:.6f} {n}" for n in range(log.written, due)))
                    log.written = due
                except Exception as exc:  # the pod is gone: its container's task reports it
                    log.done.set_exception(exc)
                    continue
                if log.written == log.lines:
                    log.done.set_result(None)
            await asyncio.sleep(SYNTHETIC_TICK)

    async def _container(
        self, name: str, container: dict[str, Any], env: dict[str, str], workspace: Path, *, container_name: str = ""
    ) -> int:
        """Run a container's command; its output lines become its log; return the exit code."""
        proc = await asyncio.create_subprocess_exec(
            *container["command"], *(container.get("args") or []), cwd=workspace, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
        self._groups.add(proc.pid)
        try:
            assert proc.stdout is not None
            async for raw in proc.stdout:
                self.fake.log(name, raw.decode("utf-8", "replace").rstrip("\n"), container=container_name)
            return await proc.wait()
        finally:  # cancelled (deadline, OOM, deletion) or done: nothing of it survives
            self._groups.discard(proc.pid)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(ProcessLookupError):
                await asyncio.shield(proc.wait())


def kubeconfig(url: str, namespace: str = "mlpatron-jobs") -> dict[str, Any]:
    return {
        "apiVersion": "v1", "kind": "Config", "current-context": "simulated",
        "clusters": [{"name": "simulated", "cluster": {"server": url}}],
        "users": [{"name": "simulated", "user": {"token": "simulated-cluster"}}],
        "contexts": [{"name": "simulated", "context": {"cluster": "simulated", "user": "simulated",
                                                       "namespace": namespace}}],
    }  # fmt: skip


def _sim_routes(fake: FakeKubernetes, kubelet: Kubelet) -> list[web.RouteDef]:
    async def created(_: web.Request) -> web.Response:
        return web.json_response(fake.created_bodies)

    async def deletions(_: web.Request) -> web.Response:
        return web.json_response(fake.deletions)

    async def finished(_: web.Request) -> web.Response:
        return web.json_response(kubelet.finished)

    async def stats(_: web.Request) -> web.Response:
        def resource(path: str) -> str:
            parts = path.split("/")
            return parts[-1] if parts[-1] in ("jobs", "pods", "events", "log") else parts[-2]

        counts = Counter(f"{m} {resource(p)}{' watch' if 'watch' in str(q).lower() else ''}"
                         for m, p, q in fake.requests if not p.startswith("/_sim"))  # fmt: skip
        return web.json_response({"requests": counts, "jobs": len(fake.created_jobs)})

    return [
        web.get("/_sim/created", created),
        web.get("/_sim/deletions", deletions),
        web.get("/_sim/stats", stats),
        web.get("/_sim/finished", finished),
    ]


async def serve(port: int, kubeconfig_path: Path, scenario: Scenario, work_dir: Path) -> None:
    fake = FakeKubernetes()
    kubelet = Kubelet(fake, scenario, work_dir)
    url = await fake.start(port, _sim_routes(fake, kubelet))
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    kubeconfig_path.write_text(json.dumps(kubeconfig(url)))
    print(f"READY {url}", file=sys.stderr, flush=True)
    try:
        await stop.wait()
    finally:
        await kubelet.stop()
        await fake.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--kubeconfig", required=True, help="where to write a kubeconfig for this cluster")
    parser.add_argument("--scenario", help="YAML/JSON scenario (defaults and rules)")
    parser.add_argument("--work-dir", help="where pods' workspaces live (default: a temporary directory)")
    args = parser.parse_args()
    # The API server keeps every object and its history as small dicts: with the collector's
    # default thresholds, a thousand Jobs created at once spent three quarters of the time in
    # young-generation collections rescanning them.
    gc.set_threshold(50_000, 20, 100)
    with tempfile.TemporaryDirectory(prefix="mlpatron-sim-") as tmp:
        work = Path(args.work_dir or tmp)
        asyncio.run(serve(args.port, Path(args.kubeconfig), Scenario.load(args.scenario), work))


class ClusterProcess(ChildProcess):
    """The simulated cluster as a child process of a test: `.url`, `.kubeconfig`, `stop()`."""

    def __init__(self, directory: Path, scenario: dict[str, Any] | None = None) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.kubeconfig = directory / "kubeconfig"
        scenario_path = directory / "scenario.json"
        scenario_path.write_text(json.dumps(scenario or {}))
        super().__init__(
            [sys.executable, "-m", "tests.k8s_fake.cluster", "--kubeconfig", str(self.kubeconfig),
             "--scenario", str(scenario_path), "--work-dir", str(directory / "pods")],
            {}, directory / "cluster.log",
        )  # fmt: skip
        try:
            self.url = self.wait_for_log("READY ").split()[1]
        except BaseException:
            self.stop()
            raise

    def api(self, path: str) -> Any:
        return httpx.get(self.url + path, timeout=10).json()


if __name__ == "__main__":
    main()
