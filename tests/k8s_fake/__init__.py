"""A fake Kubernetes API server speaking the real wire protocol (see `server.py`)."""

from tests.k8s_fake.server import FakeKubernetes

__all__ = ["FakeKubernetes"]
