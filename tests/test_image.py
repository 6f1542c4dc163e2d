"""The production image, built and run the way an operator would.

`scripts/build-image.sh` builds it with buildah (chroot isolation, no daemon) from a Debian base
bootstrapped here; the containers below run with `buildah run` (chroot isolation shares this
machine's network, so they reach this session's PostgreSQL, Redis, MLflow and fake Kubernetes on
loopback). Layers are cached by buildah, so a second build only redoes what changed.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from app.embedded.ports import free_port
from tests.conftest import ROOT
from tests.k8s_fake import FakeKubernetes

TAG = "localhost/mlpatron:test"
UID = "10001"


@pytest.fixture(scope="module")
def image() -> str:
    started = time.monotonic()
    build = subprocess.run(
        [str(ROOT / "scripts" / "build-image.sh"), TAG], cwd=ROOT, capture_output=True, text=True, timeout=1800
    )
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    print(f"\nimage built in {time.monotonic() - started:.0f} s: {build.stdout.strip().splitlines()[-1]}")
    return TAG


@pytest.fixture
def container(image: str) -> Iterator[str]:
    name = subprocess.run(
        ["buildah", "from", "--pull-never", image], check=True, capture_output=True, text=True
    ).stdout.strip()
    yield name
    subprocess.run(["buildah", "rm", name], capture_output=True)


def run_args(container: str, env: dict[str, str], *command: str, volumes: tuple[str, ...] = ()) -> list[str]:
    args = ["buildah", "run", "--isolation", "chroot"]
    for key, value in env.items():
        args += ["--env", f"{key}={value}"]
    for volume in volumes:
        args += ["--volume", volume]
    return [*args, container, "--", *command]


class Background:
    """A command inside the container, stopped (with everything it started) at the end."""

    def __init__(self, args: list[str], log: Path) -> None:
        self.log = log
        self.proc = subprocess.Popen(args, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True)

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


def wait_until(check, timeout: float, what: str, proc: Background) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.proc.poll() is None, f"{what}: the process exited\n{proc.output()}"
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"{what} within {timeout} s\n{proc.output()}")


@pytest.fixture
async def fresh_database(postgres_server: str) -> str:
    from app.embedded.postgres import create_database

    return await create_database(postgres_server, f"mlpatron_image_{uuid.uuid4().hex[:10]}")


@pytest.fixture
async def fresh_redis(redis_server: str) -> str:
    """A Redis database of its own: the rest of the suite also calls from 127.0.0.1, and its
    requests fill the anonymous per-IP budget that this deployment (default limits) would share."""
    from redis.asyncio import Redis

    url = urlunsplit(urlsplit(redis_server)._replace(path="/9"))
    client = Redis.from_url(url)
    await client.flushdb()
    await client.aclose()
    return url


def test_image_runs_as_non_root_and_keeps_no_secret_in_any_layer(image: str, tmp_path: Path) -> None:
    config = json.loads(subprocess.run(["buildah", "inspect", "--type", "image", image],
                                       check=True, capture_output=True, text=True).stdout)  # fmt: skip
    assert config["OCIv1"]["config"]["User"] == f"{UID}:{UID}"
    # Every layer, not only the final file system: a secret copied in and deleted later stays in its layer.
    subprocess.run(["buildah", "push", "--quiet", image, f"oci:{tmp_path / 'oci'}"], check=True, capture_output=True)
    layers = [p for p in (tmp_path / "oci" / "blobs" / "sha256").iterdir() if tarfile.is_tarfile(p)]
    assert layers
    size = sum(p.stat().st_size for p in layers)
    print(f"\nimage: {len(layers)} layers, {size / 2**20:.0f} MiB compressed")
    for layer in layers:
        with tarfile.open(layer) as tar:
            names = [n.lstrip("./") for n in tar.getnames()]
        leaked = [n for n in names if n in ("etc/pip.conf", "root/.config/pip/pip.conf") or n.startswith("run/secrets/")]
        assert leaked == [], f"{layer.name} holds {leaked}"


def test_image_migrates_serves_the_api_and_the_spa(
    container: str, fresh_database: str, fresh_redis: str, mlflow_server: str, tmp_path: Path
) -> None:
    env = {"DATABASE_URL": fresh_database, "REDIS_URL": fresh_redis, "MLFLOW_TRACKING_URI": mlflow_server}
    user = subprocess.run(run_args(container, {}, "id", "-u"), capture_output=True, text=True, check=True)
    assert user.stdout.strip() == UID
    migrate = subprocess.run(run_args(container, env, "mlpatron", "migrate"), capture_output=True, text=True, timeout=300)
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    assert "migrations applied" in migrate.stdout

    port = free_port()
    base = f"http://127.0.0.1:{port}"
    serve = Background(
        run_args(container, env, "mlpatron", "serve", "--api-only", "--host", "127.0.0.1", "--port", str(port)),
        tmp_path / "serve.log",
    )
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"{base}/ready", timeout=2).status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(ready, 120, "/ready answers 200", serve)
        answer = httpx.post(f"{base}/graphql", json={"query": "{ gpuCatalog { gpuType } }"}, timeout=10).json()
        assert "errors" not in answer, answer
        assert answer["data"]["gpuCatalog"], answer
        page = httpx.get(f"{base}/", timeout=10)
        assert page.status_code == 200 and '<div id="root">' in page.text
    finally:
        serve.stop()


async def test_image_watcher_follows_kubernetes(
    container: str, database_url: str, redis_server: str, tmp_path: Path
) -> None:
    import asyncio

    fake = FakeKubernetes()
    await fake.start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "fake",
        "clusters": [{"name": "fake", "cluster": {"server": fake.url}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "fake"}}],
        "users": [{"name": "fake", "user": {"token": "t"}}],
    }))  # fmt: skip
    kubeconfig.chmod(0o644)
    env = {
        "DATABASE_URL": database_url, "REDIS_URL": redis_server, "EXECUTOR": "kubernetes",
        "KUBECONFIG": "/etc/mlpatron/kubeconfig", "K8S_NAMESPACE": "mlpatron-jobs",
    }  # fmt: skip
    watcher = Background(
        run_args(container, env, "mlpatron", "watcher", volumes=(f"{kubeconfig}:/etc/mlpatron/kubeconfig:ro",)),
        tmp_path / "watcher.log",
    )
    try:
        deadline = time.monotonic() + 120
        while not any(m == "GET" and p.endswith("/jobs") and q.get("watch", "").lower() == "true"
                      for m, p, q in fake.requests):  # fmt: skip
            assert watcher.proc.poll() is None, watcher.output()
            assert time.monotonic() < deadline, "the watcher never watched jobs\n" + watcher.output()
            await asyncio.sleep(0.2)
    finally:
        await asyncio.to_thread(watcher.stop)
        await fake.stop()
