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
import logging
import os
import re
import shutil
import signal
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

from app.core.settings import get_settings

log = logging.getLogger("mlpatron.git")

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

# Names that only ever mean something inside a network (RFC 6761/6762/8375, cloud metadata).
_INTERNAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".internal", ".intranet", ".lan", ".home.arpa")
_HOST_RE = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*\.?$")
# Metadata services that `is_global` does not already exclude (Oracle Cloud's).
_METADATA = {ipaddress.ip_address("192.0.0.192")}
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """IPv4 addresses an IPv6 address reaches: mapped, 6to4, Teredo, NAT64."""
    found = [ip.ipv4_mapped, ip.sixtofour, *(ip.teredo or ())]
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return [a for a in found if a is not None]


def is_public_address(address: str) -> bool:
    """True for a globally routable unicast address: never loopback, private, link-local,
    multicast, unspecified, reserved, shared (CGNAT) or a metadata service, in any IPv6 form."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and not all(is_public_address(str(a)) for a in _embedded_ipv4(ip)):
        return False
    return ip.is_global and not ip.is_multicast and ip not in _METADATA


def _host_is_internal(host: str) -> bool:
    host = host.rstrip(".").lower()
    if host == "localhost" or host.endswith(_INTERNAL_SUFFIXES):
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
    return not is_public_address(str(ip))


def _normal_host(raw: str) -> str:
    """The host as git and curl will see it: percent-decoded, IDNA-encoded, lower case."""
    host = unquote(raw).strip("[]").lower()
    if ":" in host:  # an IPv6 literal
        ipaddress.IPv6Address(host.split("%", 1)[0])
        return f"[{host}]"
    host = host.encode("idna").decode("ascii")
    if not _HOST_RE.match(host):
        raise ValueError(f"invalid host name {host[:60]!r}")
    return host


def _bad_url(reason: str) -> GitError:
    return GitError("INVALID_GIT_URL", f"invalid git URL: {reason}")


def validate_git_url(url: str, allow_local: bool) -> str:
    """Return the URL to use (host normalised), or raise GitError(INVALID_GIT_URL).

    Production accepts public `https://` only (no credentials, no internal hosts, only the
    ports in `GIT_ALLOWED_PORTS`) so the platform cannot be pointed at itself; the host is
    checked after decoding, as git will decode it. Whether its DNS answer is public is checked
    at each git call (`_pin`). `allow_local` (tests, embedded default) also accepts `file://`
    URLs and absolute paths of existing directories.
    """
    url = url.strip()
    if not url:
        raise _bad_url("empty")
    if len(url) > MAX_URL_LENGTH:
        raise _bad_url("too long")
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        raise _bad_url("contains whitespace or control characters")
    if allow_local and (url.startswith("/") or url.lower().startswith("file:")):
        return _local_repository(url)
    return _public_https(url, allow_local)


def _local_repository(url: str) -> str:
    if url.startswith("/"):
        path = url
    else:
        parts = urlsplit(url)
        if parts.netloc or not parts.path.startswith("/"):
            raise _bad_url("file URLs must look like file:///absolute/path")
        path = unquote(parts.path)
    if not os.path.isdir(path):
        raise _bad_url(f"local repository {path!r} does not exist")
    return url


def _public_https(url: str, allow_local: bool) -> str:
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
        netloc = unquote(parts.netloc)
        host = _normal_host(parts.hostname or "") if parts.hostname else ""
    except (ValueError, UnicodeError) as exc:
        raise _bad_url(str(exc)) from None
    if parts.scheme.lower() != "https":
        allowed = "https:// (or a local path / file:// here)" if allow_local else "https://"
        raise _bad_url(f"only {allowed} URLs are accepted")
    if "@" in netloc:
        raise _bad_url("credentials in the URL are not allowed; the repository must be public")
    _check_host(host, port)
    if parts.query or parts.fragment:
        raise _bad_url("query strings and fragments are not allowed")
    if parts.path.strip("/") == "":
        raise _bad_url("missing repository path")
    return urlunsplit(("https", host if port is None else f"{host}:{port}", parts.path, "", ""))


def _check_host(host: str, port: int | None) -> None:
    if not host:
        raise _bad_url("missing host")
    if _host_is_internal(host.strip("[]")):
        raise _bad_url(f"host {host!r} is not a public address")
    allowed_ports = get_settings().git_allowed_ports
    if (port or 443) not in allowed_ports:
        raise _bad_url(f"only port {', '.join(map(str, allowed_ports))} is allowed")


# --------------------------------------------------------------------------- pinned resolution

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


_resolver: Resolver = system_resolver


def set_resolver(resolver: Resolver) -> None:
    """Answer DNS for git URLs (tests use a resolver they control)."""
    global _resolver
    _resolver = resolver


def _unreachable(url: str, detail: str) -> GitError:
    """The caller learns only that the repository could not be reached (no port-scan oracle);
    the details go to the log."""
    log.warning("git: cannot reach %s: %s", url, detail)
    return GitError("REPO_UNREACHABLE", f"cannot reach repository {url}")


class UnresolvedHost(GitError):
    """The host has no DNS answer (as opposed to a non-public one)."""


async def pinned_config(url: str) -> dict[str, str]:
    """git configuration for a network call to `url`: its host resolved once, every address
    public, and curl pinned to the checked one (a second DNS answer cannot differ: no
    rebinding); redirects off (they could lead anywhere). Empty for local repositories."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "https":
        return {}
    host, port = (parts.hostname or "").strip("[]"), parts.port or 443
    try:
        addresses = [host] if _is_ip(host) else await _resolver(host, port)
    except OSError as exc:
        log.warning("git: cannot resolve %s: %s", host, exc)
        raise UnresolvedHost("REPO_UNREACHABLE", f"cannot reach repository {url}") from None
    if not addresses or not all(is_public_address(a) for a in addresses):
        raise _unreachable(url, f"{host} resolves to non-public {addresses}")
    pin = f"[{addresses[0]}]" if ":" in addresses[0] else addresses[0]
    return {"http.curloptResolve": f"{host}:{port}:{pin}", "http.followRedirects": "false"}


async def _pin(url: str) -> tuple[str, ...]:
    """`pinned_config` as git's `-c` options."""
    return tuple(arg for key, value in (await pinned_config(url)).items() for arg in ("-c", f"{key}={value}"))


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


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
    rc, _, err = await _git(*await _pin(url), "ls-remote", "--", url, "HEAD", time_limit=LS_REMOTE_TIMEOUT)
    if rc != 0:
        raise _unreachable(url, _tail(err))


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
    rc, out, err = await _git(*await _pin(url), "ls-remote", "--", url, *patterns, time_limit=LS_REMOTE_TIMEOUT)
    if rc != 0:
        raise _unreachable(url, _tail(err))
    refs: dict[str, str] = {}
    for line in out.decode(errors="replace").splitlines():
        sha, _, name = line.partition("\t")
        refs[name] = sha
    for cand in candidates:
        # An annotated tag's own sha is the tag object; the peeled ^{} entry is the commit.
        found = refs.get(cand + "^{}") or refs.get(cand)
        if found and _SHA_RE.match(found):
            return found.lower()
    hint = " (use the full 40-character sha, not an abbreviation)" if _HEX_RE.match(version) else ""
    raise GitError("UNKNOWN_REF", f"no branch or tag {version!r} in {url}{hint}")


async def default_branch(url: str) -> str:
    """The branch the repository's HEAD points at (`main`, `master`, …)."""
    rc, out, err = await _git(*await _pin(url), "ls-remote", "--symref", "--", url, "HEAD",
                              time_limit=LS_REMOTE_TIMEOUT)
    if rc != 0:
        raise _unreachable(url, _tail(err))
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
                raise _unreachable(url, f"cannot prepare a git cache: {_tail(err)}")
        os.utime(git_dir)
        if await _has_commit(git_dir, sha):
            return git_dir
        gd = (*await _pin(url), "--git-dir", str(git_dir))
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
            raise _unreachable(url, _tail(err))
        if await _has_commit(git_dir, sha):
            return git_dir
        raise GitError("UNKNOWN_REF", f"commit {sha} does not exist in {url}")


async def read_file_at(url: str, commit_sha: str, path: str, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Text of `path` at the commit, or None when there is no such file."""
    git_dir = await _cached_repo(url, commit_sha)
    gd = (*await _pin(url), "--git-dir", str(git_dir))  # reading a blob may fetch it
    spec = f"{commit_sha}:{path.lstrip('/')}"
    rc, out, _ = await _git(*gd, "cat-file", "-t", spec)
    if rc != 0 or out.strip() != b"blob":
        return None
    rc, out, err = await _git(*gd, "cat-file", "-s", spec)
    if rc == 0 and int(out or b"0") > max_bytes:
        raise GitError("FILE_TOO_LARGE", f"{path} is larger than {max_bytes} bytes")
    rc, out, err = await _git(*gd, "cat-file", "blob", spec, time_limit=FETCH_TIMEOUT)  # may fetch the blob
    if rc != 0:
        raise _unreachable(url, f"cannot read {path}: {_tail(err)}")
    return out.decode("utf-8", errors="replace")


async def list_root(url: str, commit_sha: str) -> list[str]:
    """Names at the top level of the commit (MLflow finds `MLproject` case-insensitively)."""
    git_dir = await _cached_repo(url, commit_sha)
    rc, out, err = await _git("--git-dir", str(git_dir), "ls-tree", "--name-only", "-z", commit_sha)
    if rc != 0:
        raise _unreachable(url, f"cannot list {commit_sha}: {_tail(err)}")
    return [n for n in out.decode(errors="replace").split("\0") if n]


# --------------------------------------------------------------------------- checkout


async def checkout(url: str, commit_sha: str, dest: Path) -> None:
    """Materialize exactly `commit_sha` in `dest` (created; must not exist or be empty).

    Shallow fetch of the one commit first (cheap, and GitHub/GitLab/local repos allow it);
    if the server refuses, fetch all branches and tags and check the commit out from there.
    `origin` stays configured so MLflow records the source repository of the run.
    """
    started = time.monotonic()
    pin = await _pin(url)

    async def step(*args: str, time_limit: float = LOCAL_TIMEOUT) -> tuple[int, str]:
        rc, _, err = await _git(*pin, "-C", str(dest), *args, time_limit=time_limit)
        return rc, err

    rc, _, err = await _git("init", "--quiet", str(dest))  # creates dest and its parents
    if rc == 0:
        rc, err = await step("remote", "add", "origin", url)
    if rc != 0:
        raise _unreachable(url, f"cannot initialise {dest}: {_tail(err)}")
    rc, err = await step("fetch", "--quiet", "--depth", "1", "origin", commit_sha, time_limit=FETCH_TIMEOUT)
    if rc != 0:
        remaining = max(FETCH_TIMEOUT - (time.monotonic() - started), 1.0)
        rc, err = await step("fetch", "--quiet", "--tags", "origin", time_limit=remaining)
        if rc != 0:
            raise _unreachable(url, _tail(err))
    rc, err = await step("-c", "advice.detachedHead=false", "checkout", "--quiet", "--detach", commit_sha)
    if rc != 0:
        raise GitError("UNKNOWN_REF", f"cannot check out {commit_sha}: {_tail(err)}")
