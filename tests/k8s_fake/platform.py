"""The fake API server with a client of it and the environment of a platform process using it
(`EXECUTOR=kubernetes`, a kubeconfig pointing at it), for tests that run API replicas on it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from kubernetes_asyncio.client import ApiClient, Configuration

from app.execution.k8s_api import KubeApi
from tests.api_process import replica_env
from tests.k8s_fake.cluster import kubeconfig as kubeconfig_of
from tests.k8s_fake.server import FakeKubernetes

NAMESPACE = "mlpatron-jobs"


@asynccontextmanager
async def fake_cluster(settings, kubeconfig: Path) -> AsyncIterator[tuple[FakeKubernetes, KubeApi, dict[str, str]]]:
    """(the started fake, a `KubeApi` on it, a replica environment using it); `kubeconfig` is written."""
    fake = FakeKubernetes()
    await fake.start()
    kubeconfig.write_text(json.dumps(kubeconfig_of(fake.url, NAMESPACE)))
    configuration = Configuration()
    configuration.host = fake.url
    client = ApiClient(configuration)
    env = replica_env(settings) | {"EXECUTOR": "kubernetes", "KUBECONFIG": str(kubeconfig),
                                   "K8S_NAMESPACE": NAMESPACE, "K8S_ALLOW_LOCAL_REPOS": "1"}  # fmt: skip
    try:
        yield fake, KubeApi(client, NAMESPACE), env
    finally:
        await client.close()
        await fake.stop()
