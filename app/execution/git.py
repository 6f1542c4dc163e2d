"""Git access for MLproject parsing and job checkouts.

Every call is `git` via `asyncio.create_subprocess_exec` (never a shell) in its own process
group with a timeout, a hermetic config and no prompts, so a hostile or dead remote can
neither hang a request nor run anything on the platform.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import hashlib
import ipaddress
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from urllib.parse import unquote, urlsplit

LS_REMOTE_TIMEOUT = 30.0
FETCH_TIMEOUT = 300.0
LOCAL_TIMEOUT = 30.0
MAX_FILE_BYTES = 1 << 20
MAX_URL_LENGTH = 2048
_CACHE_MAX_REPOS = 32

_SHA_RE = re.compile(r"^[0-9a-fA-F]{40}$")
_HEX_RE = re.compile(r"^[0-9a-fA-F]{4,39}$")
_BAD_REF_RE = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


class GitError(Exception):
    """A git failure callers can map to an API error: `code` is stable, the message is for humans."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# --------------------------------------------------------------------------- URL policy


def _host_is_internal(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        ip: ipaddress.IPv4Address | ipaddress.IPv6Address = ipaddress.ip_address(host)
    except ValueError:
        try:
            # curl resolves loose IPv4 spellings ("127.1", "2130706433", "0x7f.1") the way
            # inet_aton does, so they are IP literals too.
            ip = ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            # A DNS name; without a dot it can only be an internal one ("gitlab", "git-svc").
            return "." not in host
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not ip.is_global


def validate_git_url(url: str, allow_local: bool) -> str:
    """Return the URL to use, or raise GitError(INVALID_GIT_URL).

    Production accepts public `https://` only (no credentials, no internal hosts) so the
    platform cannot be pointed at itself. `allow_local` (tests, embedded default) also
    accepts `file://` URLs and absolute paths of existing directories.
    """

    def bad(reason: str) -> GitError:
        return GitError("INVALID_GIT_URL", f"invalid git URL: {reason}")

    url = url.strip()
    if not url:
        raise bad("empty")
    if len(url) > MAX_URL_LENGTH:
        raise bad("too long")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise bad("contains whitespace or control characters")

    if allow_local and (url.startswith("/") or url.lower().startswith("file:")):
        if url.startswith("/"):
            path = url
        else:
            parts = urlsplit(url)
            if parts.netloc or not parts.path.startswith("/"):
                raise bad("file URLs must look like file:///absolute/path")
            path = unquote(parts.path)
        if not os.path.isdir(path):
            raise bad(f"local repository {path!r} does not exist")
        return url

    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError on a malformed port
    except ValueError as exc:
        raise bad(str(exc)) from None
    if parts.scheme.lower() != "https":
        allowed = "https:// (or a local path / file:// here)" if allow_local else "https://"
        raise bad(f"only {allowed} URLs are accepted")
    if "@" in parts.netloc:
        raise bad("credentials in the URL are not allowed; the repository must be public")
    if not host:
        raise bad("missing host")
    if _host_is_internal(host):
        raise bad(f"host {host!r} is not a public address")
    if parts.query or parts.fragment:
        raise bad("query strings and fragments are not allowed")
    if parts.path.strip("/") == "":
        raise bad("missing repository path")
    return url


# --------------------------------------------------------------------------- running git


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        GIT_TERMINAL_PROMPT="0",  # a private/missing repo fails instead of waiting for a password
        GIT_ASKPASS="/bin/false",
        GIT_CONFIG_NOSYSTEM="1",  # hermetic: no insteadOf rewrites, helpers or hooks from the host
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_ALLOW_PROTOCOL="https:file",  # defense in depth behind validate_git_url (no ext::, ssh)
        LC_ALL="C",
    )
    for key in ("HTTPS_PROXY", "https_proxy", "NO_PROXY", "no_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env


async def _git(*args: str, time_limit: float = LOCAL_TIMEOUT) -> tuple[int, bytes, str]:
    """Run git; return (returncode, stdout, stderr). A timeout kills git and its helpers."""
    proc = await asyncio.create_subprocess_exec(
        "git",
        *args,
        env=_git_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,  # git-remote-https / upload-pack die with it
    )
    try:
        async with asyncio.timeout(time_limit):
            out, err = await proc.communicate()
    except BaseException as exc:  # timeout or caller cancelled: never leave git behind
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            await asyncio.shield(proc.wait())
        if isinstance(exc, TimeoutError):
            return -1, b"", f"timed out after {time_limit:.0f} s"
        raise
    return proc.returncode or 0, out, err.decode(errors="replace")


def _tail(stderr: str) -> str:
    lines = [ln for ln in stderr.strip().splitlines() if ln.strip()]
    return " | ".join(lines[-3:])[:500] or "no output"


async def _reachable(url: str) -> None:
    rc, _, err = await _git("ls-remote", "--", url, "HEAD", time_limit=LS_REMOTE_TIMEOUT)
    if rc != 0:
        raise GitError("REPO_UNREACHABLE", f"cannot reach repository {url}: {_tail(err)}")


# --------------------------------------------------------------------------- refs


async def resolve_ref(url: str, version: str) -> str:
    """Resolve a branch, tag or full commit sha to the 40-hex commit sha the run will use."""
    version = version.strip()
    if _SHA_RE.match(version):
        sha = version.lower()
        await _cached_repo(url, sha)  # proves the repository has this commit
        return sha
    malformed = version.startswith(("-", "/")) or version.endswith((".", "/")) or _BAD_REF_RE.search(version)
    if not version or malformed:
        raise GitError("UNKNOWN_REF", f"{version!r} is not a valid branch, tag or commit")

    if version.startswith("refs/") or version == "HEAD":
        candidates = [version]
    else:
        candidates = [f"refs/tags/{version}", f"refs/heads/{version}"]  # git's own precedence
    patterns = [p for c in candidates for p in (c, c + "^{}")]
    rc, out, err = await _git("ls-remote", "--", url, *patterns, time_limit=LS_REMOTE_TIMEOUT)
    if rc != 0:
        raise GitError("REPO_UNREACHABLE", f"cannot reach repository {url}: {_tail(err)}")
    refs: dict[str, str] = {}
    for line in out.decode(errors="replace").splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    for cand in candidates:
        # An annotated tag's own sha is the tag object; the peeled ^{} entry is the commit.
        sha = refs.get(cand + "^{}") or refs.get(cand)
        if sha and _SHA_RE.match(sha):
            return sha.lower()
    hint = " (use the full 40-character sha, not an abbreviation)" if _HEX_RE.match(version) else ""
    raise GitError("UNKNOWN_REF", f"no branch or tag {version!r} in {url}{hint}")


async def default_branch(url: str) -> str:
    """The branch the repository's HEAD points at (`main`, `master`, …)."""
    rc, out, err = await _git("ls-remote", "--symref", "--", url, "HEAD", time_limit=LS_REMOTE_TIMEOUT)
    if rc != 0:
        raise GitError("REPO_UNREACHABLE", f"cannot reach repository {url}: {_tail(err)}")
    for line in out.decode(errors="replace").splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            return target.removeprefix("ref: refs/heads/")
    raise GitError("UNKNOWN_REF", f"{url} has no default branch: enter a branch, tag or commit")


# --------------------------------------------------------------------------- reading files

# One bare, shallow, blob-less repo per URL, reused across calls in this process: parsing
# MLproject twice (parse, then create run) fetches commits and trees once and blobs lazily.
_cache_dir: tempfile.TemporaryDirectory[str] | None = None
_cache_locks: dict[str, asyncio.Lock] = {}


def _cache_root() -> Path:
    global _cache_dir
    if _cache_dir is None:
        _cache_dir = tempfile.TemporaryDirectory(prefix="mlpatron-git-")
        atexit.register(_cache_dir.cleanup)
    return Path(_cache_dir.name)


def _evict_old(root: Path, keep: Path) -> None:
    repos = sorted((p for p in root.iterdir() if p != keep), key=lambda p: p.stat().st_mtime)
    for old in repos[: max(0, len(repos) + 1 - _CACHE_MAX_REPOS)]:
        if not _cache_locks.get(old.name, asyncio.Lock()).locked():
            shutil.rmtree(old, ignore_errors=True)


async def _has_commit(git_dir: Path, sha: str) -> bool:
    rc, _, _ = await _git("--git-dir", str(git_dir), "cat-file", "-e", f"{sha}^{{commit}}")
    return rc == 0


async def _cached_repo(url: str, sha: str) -> Path:
    """A git dir holding commit `sha` of `url`; raises UNKNOWN_REF / REPO_UNREACHABLE."""
    root = _cache_root()
    key = hashlib.sha256(url.encode()).hexdigest()[:32]
    git_dir = root / key
    async with _cache_locks.setdefault(key, asyncio.Lock()):
        if not git_dir.exists():
            _evict_old(root, git_dir)
            rc, _, err = await _git("init", "--quiet", "--bare", str(git_dir))
            if rc == 0:
                rc, _, err = await _git("--git-dir", str(git_dir), "remote", "add", "origin", url)
            if rc != 0:
                shutil.rmtree(git_dir, ignore_errors=True)
                raise GitError("REPO_UNREACHABLE", f"cannot prepare a git cache: {_tail(err)}")
        os.utime(git_dir)
        if await _has_commit(git_dir, sha):
            return git_dir
        gd = ("--git-dir", str(git_dir))
        shallow = ("--depth", "1", "--filter=blob:none")
        rc, _, err = await _git(*gd, "fetch", "--quiet", *shallow, "origin", sha, time_limit=FETCH_TIMEOUT)
        if rc == 0 and await _has_commit(git_dir, sha):
            return git_dir
        await _reachable(url)
        # Reachable but fetch-by-sha refused: an unknown commit, or a server that only serves
        # advertised refs. Fetch every branch and tag and look again.
        rc, out, _ = await _git(*gd, "rev-parse", "--is-shallow-repository")
        unshallow = ["--unshallow"] if out.strip() == b"true" else []
        refspecs = ("+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*")
        args = ("fetch", "--quiet", *unshallow, "--filter=blob:none", "origin", *refspecs)
        rc, _, err = await _git(*gd, *args, time_limit=FETCH_TIMEOUT)
        if rc != 0:
            raise GitError("REPO_UNREACHABLE", f"cannot fetch {url}: {_tail(err)}")
        if await _has_commit(git_dir, sha):
            return git_dir
        raise GitError("UNKNOWN_REF", f"commit {sha} does not exist in {url}")


async def read_file_at(url: str, commit_sha: str, path: str, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Text of `path` at the commit, or None when there is no such file."""
    git_dir = await _cached_repo(url, commit_sha)
    gd = ("--git-dir", str(git_dir))
    spec = f"{commit_sha}:{path.lstrip('/')}"
    rc, out, _ = await _git(*gd, "cat-file", "-t", spec)
    if rc != 0 or out.strip() != b"blob":
        return None
    rc, out, err = await _git(*gd, "cat-file", "-s", spec)
    if rc == 0 and int(out or b"0") > max_bytes:
        raise GitError("FILE_TOO_LARGE", f"{path} is larger than {max_bytes} bytes")
    rc, out, err = await _git(*gd, "cat-file", "blob", spec, time_limit=FETCH_TIMEOUT)  # may fetch the blob
    if rc != 0:
        raise GitError("REPO_UNREACHABLE", f"cannot read {path} from {url}: {_tail(err)}")
    return out.decode("utf-8", errors="replace")


async def list_root(url: str, commit_sha: str) -> list[str]:
    """Names at the top level of the commit (MLflow finds `MLproject` case-insensitively)."""
    git_dir = await _cached_repo(url, commit_sha)
    rc, out, err = await _git("--git-dir", str(git_dir), "ls-tree", "--name-only", "-z", commit_sha)
    if rc != 0:
        raise GitError("REPO_UNREACHABLE", f"cannot list {url}@{commit_sha}: {_tail(err)}")
    return [n for n in out.decode(errors="replace").split("\0") if n]


# --------------------------------------------------------------------------- checkout


async def checkout(url: str, commit_sha: str, dest: Path) -> None:
    """Materialize exactly `commit_sha` in `dest` (created; must not exist or be empty).

    Shallow fetch of the one commit first (cheap, and GitHub/GitLab/local repos allow it);
    if the server refuses, fetch all branches and tags and check the commit out from there.
    `origin` stays configured so MLflow records the source repository of the run.
    """
    started = time.monotonic()

    async def step(*args: str, time_limit: float = LOCAL_TIMEOUT) -> tuple[int, str]:
        rc, _, err = await _git("-C", str(dest), *args, time_limit=time_limit)
        return rc, err

    rc, _, err = await _git("init", "--quiet", str(dest))  # creates dest and its parents
    if rc == 0:
        rc, err = await step("remote", "add", "origin", url)
    if rc != 0:
        raise GitError("REPO_UNREACHABLE", f"cannot initialise {dest}: {_tail(err)}")
    rc, err = await step("fetch", "--quiet", "--depth", "1", "origin", commit_sha, time_limit=FETCH_TIMEOUT)
    if rc != 0:
        remaining = max(FETCH_TIMEOUT - (time.monotonic() - started), 1.0)
        rc, err = await step("fetch", "--quiet", "--tags", "origin", time_limit=remaining)
        if rc != 0:
            raise GitError("REPO_UNREACHABLE", f"cannot fetch {url}: {_tail(err)}")
    rc, err = await step("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit_sha)
    if rc != 0:
        raise GitError("UNKNOWN_REF", f"cannot check out {commit_sha}: {_tail(err)}")
