from __future__ import annotations

from pathlib import Path

import pytest

from app.execution import git as gitmod
from app.execution.git import GitError, checkout, read_file_at, resolve_ref, validate_git_url

REJECTED_IN_PRODUCTION = [
    "http://github.com/u/r",
    "ssh://git@github.com/u/r.git",
    "git@github.com:u/r.git",
    "git://github.com/u/r",
    "ext::sh -c touch% /tmp/pwned",
    "file:///srv/repo",
    "/srv/repo",
    "relative/repo",
    "https://user:token@github.com/u/r",
    "https://token@github.com/u/r",
    "https://127.0.0.1/r",
    "https://127.1/r",
    "https://2130706433/r",
    "https://0x7f.0.0.1/r",
    "https://10.1.2.3/r",
    "https://192.168.0.10/r",
    "https://172.16.0.1/r",
    "https://169.254.169.254/latest/meta-data",
    "https://[::1]/r",
    "https://[::ffff:127.0.0.1]/r",
    "https://[fd00::1]/r",
    "https://localhost/r",
    "https://LOCALHOST./r",
    "https://api.localhost/r",
    "https://gitlab/r",
    "https://github.com",
    "https://github.com/",
    "https://github.com/u/r?ref=main",
    "https://github.com/u/r#main",
    "https://github.com/u/r --upload-pack=touch",
    "https://github.com:99999/u/r",
    "https://gitlab.example.com:8443/group/sub/repo.git",  # only GIT_ALLOWED_PORTS (443)
    "https://github.com:6379/u/r",
    "https://%31%32%37.0.0.1:8000/x",  # git decodes the host: so do we, before checking
    "https://%31%32%37.0.0.1/x",
    "https://localhost%2e/x",
    "https://metadata.google.internal/computeMetadata/v1/",
    "https://printer.local/r",
    "https://[::ffff:7f00:1]/r",
    "https://[64:ff9b::a9fe:a9fe]/r",  # NAT64 of 169.254.169.254
    "https://[2002:a00:1::]/r",  # 6to4 of 10.0.0.1
    "https://[fe80::1]/r",
    "https://[ff02::1]/r",
    "https://224.0.0.1/r",
    "https://0.0.0.0/r",
    "https://[::]/r",
    "https://100.100.100.200/r",  # CGNAT space (Alibaba metadata)
    "https://192.0.0.192/r",  # Oracle Cloud metadata
    "https://exa%00mple.com/r",
    "https://user%40@github.com/u/r",
    "",
]

ACCEPTED_IN_PRODUCTION = {  # URL -> the normalised URL git is given
    "https://github.com/mlpatron/mlpatron-demo": "https://github.com/mlpatron/mlpatron-demo",
    "https://github.com/mlpatron/mlpatron-demo.git": "https://github.com/mlpatron/mlpatron-demo.git",
    "HTTPS://GitHub.com/u/r": "https://github.com/u/r",
    "https://gitlab.example.com:443/group/sub/repo.git": "https://gitlab.example.com:443/group/sub/repo.git",
    "https://8.8.8.8/r.git": "https://8.8.8.8/r.git",
    "https://git%2Ehub.example/u/r": "https://git.hub.example/u/r",
    "https://bücher.example/r": "https://xn--bcher-kva.example/r",
    "  https://github.com/u/r  ": "https://github.com/u/r",
}


@pytest.mark.parametrize("url", REJECTED_IN_PRODUCTION)
def test_production_rejects(url: str) -> None:
    with pytest.raises(GitError) as err:
        validate_git_url(url, allow_local=False)
    assert err.value.code == "INVALID_GIT_URL"


@pytest.mark.parametrize("url", ACCEPTED_IN_PRODUCTION)
def test_production_accepts(url: str) -> None:
    assert validate_git_url(url, allow_local=False) == ACCEPTED_IN_PRODUCTION[url]


def test_local_urls_only_when_allowed(tmp_path: Path) -> None:
    assert validate_git_url(str(tmp_path), allow_local=True) == str(tmp_path)
    assert validate_git_url(f"file://{tmp_path}", allow_local=True) == f"file://{tmp_path}"
    assert validate_git_url("https://github.com/u/r", allow_local=True) == "https://github.com/u/r"
    for url in (
        "relative/repo",
        str(tmp_path / "missing"),
        f"file://{tmp_path / 'missing'}",
        f"file://otherhost{tmp_path}",
        "https://localhost/r",  # local *paths* are allowed, internal network hosts still are not
        "ssh://git@github.com/u/r",
    ):
        with pytest.raises(GitError):
            validate_git_url(url, allow_local=True)


@pytest.fixture
def history(make_repo):
    repo = make_repo(files={"MLproject": "name: one\n", "data/x.txt": "first\n"})
    first = repo.git("rev-parse", "HEAD")
    repo.git("tag", "v1")
    repo.git("tag", "-a", "-m", "annotated", "v1-ann")
    second = repo.commit({"data/x.txt": "second\n"}, "second")
    repo.git("branch", "feature/old", first)
    return repo, first, second


async def test_resolve_branch_tag_and_sha(history) -> None:
    repo, first, second = history
    url = f"file://{repo.path}"
    assert await resolve_ref(url, "main") == second
    assert await resolve_ref(url, "refs/heads/main") == second
    assert await resolve_ref(url, "feature/old") == first
    assert await resolve_ref(url, "v1") == first
    assert await resolve_ref(url, "v1-ann") == first  # the commit, not the annotated tag object
    assert await resolve_ref(url, first) == first  # a non-tip commit
    assert await resolve_ref(str(repo.path), first.upper()) == first


@pytest.mark.parametrize("version", ["nope", "0" * 40, "--upload-pack=touch x", "a..b", ""])
async def test_resolve_unknown_ref(history, version: str) -> None:
    repo, _, _ = history
    with pytest.raises(GitError) as err:
        await resolve_ref(f"file://{repo.path}", version)
    assert err.value.code == "UNKNOWN_REF"


async def test_abbreviated_sha_is_refused_with_a_hint(history) -> None:
    repo, first, _ = history
    with pytest.raises(GitError, match="full 40-character sha") as err:
        await resolve_ref(str(repo.path), first[:10])
    assert err.value.code == "UNKNOWN_REF"


async def test_unreachable_repo(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    for version in ("main", "1" * 40):
        with pytest.raises(GitError) as err:
            await resolve_ref(str(tmp_path / "empty"), version)
        assert err.value.code == "REPO_UNREACHABLE"


async def test_read_file_and_checkout_at_commit(history, tmp_path: Path, git_cli) -> None:
    repo, first, second = history
    url = str(repo.path)
    assert await read_file_at(url, first, "data/x.txt") == "first\n"
    assert await read_file_at(url, second, "data/x.txt") == "second\n"
    assert await read_file_at(url, second, "missing.txt") is None
    assert await read_file_at(url, second, "data") is None  # a directory is not a file
    assert sorted(await gitmod.list_root(url, second)) == ["MLproject", "data"]

    await checkout(url, first, tmp_path / "co")
    assert (tmp_path / "co" / "data" / "x.txt").read_text() == "first\n"
    assert git_cli(tmp_path / "co", "rev-parse", "HEAD") == first

    with pytest.raises(GitError):
        await checkout(url, "2" * 40, tmp_path / "co2")
