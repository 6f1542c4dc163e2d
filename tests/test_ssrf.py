"""SSRF: a production git URL (ALLOW_LOCAL_REPOS off) reaches only public https hosts on the
allowed ports. The host is decoded before it is checked, its DNS answer (from a resolver this
test controls) must be public in every form, git is pinned to the checked address, and the
caller learns nothing about the network beyond "cannot reach repository"."""

from __future__ import annotations

import dataclasses
import socket
from collections.abc import AsyncIterator

import pytest

from app.core.settings import override_settings
from app.execution import git

PARSE = """query($uri: String!) { parseMlproject(uri: $uri, version: "main") { __typename
  ... on GitError { reason message } ... on ValidationFailed { fields { field message } } } }"""

DNS = {
    "127.0.0.1.nip.io": ["127.0.0.1"],
    "localtest.me": ["::1"],
    "rebind.example": ["93.184.215.14", "10.0.0.7"],  # one private answer is enough to refuse
    "mapped.example": ["::ffff:169.254.169.254"],
    "nat64.example": ["64:ff9b::a9fe:a9fe"],
    "public.example": ["93.184.215.14"],
}
asked: list[str] = []


async def fake_resolver(host: str, port: int) -> list[str]:
    asked.append(host)
    if host not in DNS:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
    return DNS[host]


@pytest.fixture
async def production(settings) -> AsyncIterator[None]:
    override_settings(allow_local_repos=False)
    git.set_resolver(fake_resolver)
    asked.clear()
    try:
        yield
    finally:
        git.set_resolver(git.system_resolver)
        override_settings(allow_local_repos=settings.allow_local_repos)


@pytest.mark.parametrize("host", ["127.0.0.1.nip.io", "localtest.me", "rebind.example", "mapped.example",
                                  "nat64.example", "no-such-host.example"])
async def test_hosts_resolving_inside_are_unreachable_without_details(make_person, production, host: str) -> None:
    person = await make_person("ssrf")
    url = f"https://{host}/x"
    result = (await person.web.data(PARSE, {"uri": url}))["parseMlproject"]
    # The same words for a private answer and for no answer at all: no oracle for the network.
    assert result == {"__typename": "GitError", "reason": "REPO_UNREACHABLE", "message": f"cannot reach repository {url}"}
    assert asked == [host]


@pytest.mark.parametrize("url", ["https://%31%32%37.0.0.1:8000/x", "https://%31%32%37.0.0.1/x",
                                 "https://github.com:6379/x", "https://metadata.google.internal/x",
                                 "https://[::ffff:127.0.0.1]/x", "http://public.example/x"])
async def test_refused_before_any_lookup_or_git_call(make_person, production, url: str) -> None:
    person = await make_person("ssrf")
    result = (await person.web.data(PARSE, {"uri": url}))["parseMlproject"]
    assert result["__typename"] == "ValidationFailed"
    assert [f["field"] for f in result["fields"]] == ["uri"]
    assert asked == []


async def test_git_is_pinned_to_the_checked_address(production) -> None:
    assert await git._pin("https://public.example/r") == (
        "-c", "http.curloptResolve=public.example:443:93.184.215.14", "-c", "http.followRedirects=false")
    # git (libcurl) connects to the pinned address without asking DNS again: a rebinding answer
    # between the check and the fetch is never seen. (Nothing listens on loopback:443 here.)
    rc, _, err = await git._git("-c", "http.curloptResolve=pinned.invalid:443:127.0.0.1", "ls-remote",
                                "https://pinned.invalid/r")
    assert rc != 0
    assert "Could not resolve host" not in err and "pinned.invalid" in err


async def test_local_repositories_still_work_when_allowed(settings) -> None:
    assert settings.allow_local_repos
    assert await git._pin("/srv/repo") == ()
    assert await git._pin("file:///srv/repo") == ()


async def test_kubernetes_clones_are_pinned_too(production) -> None:
    from app.execution.executor import JobSpec
    from app.execution.k8s_manifests import KubernetesConfig, ManifestError, build_job_manifest
    from app.execution.kubernetes import pin_repository

    spec = JobSpec(job_id="00000000-0000-0000-0000-000000000001", run_id="00000000-0000-0000-0000-000000000002",
                   kind="dryrun", repo_url="https://public.example/lab/x.git", commit_sha="a" * 40,
                   command="python train.py", env={}, deadline_seconds=60, image="python:3.12", gpu_type="l4",
                   gpu_count=1)
    pinned = await pin_repository(spec)
    clone = build_job_manifest(pinned, KubernetesConfig())["spec"]["template"]["spec"]["initContainers"][0]
    env = {e["name"]: e["value"] for e in clone["env"]}
    config = {env[f"GIT_CONFIG_KEY_{i}"]: env[f"GIT_CONFIG_VALUE_{i}"] for i in range(int(env["GIT_CONFIG_COUNT"]))}
    assert config == {"http.curloptResolve": "public.example:443:93.184.215.14", "http.followRedirects": "false"}
    with pytest.raises(ManifestError, match="cannot reach repository"):
        await pin_repository(dataclasses.replace(spec, repo_url="https://rebind.example/x.git"))
