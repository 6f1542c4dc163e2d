"""Users, password login sessions and API keys. Secrets are only ever stored as hashes."""

from __future__ import annotations

import hashlib
import re
import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from tortoise import connections
from tortoise.exceptions import IntegrityError
from tortoise.models import Model
from tortoise.transactions import in_transaction

from app.accounts.models import ApiKey, Session, User
from app.core.errors import InvalidCredentials, ValidationError
from app.core.settings import get_settings

API_KEY_PREFIX = "mlp_sk_"
HANDLE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,38}$")
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_hasher = PasswordHasher()
# Verifying against a dummy hash keeps login time the same whether or not the email exists.
_DUMMY_HASH = _hasher.hash("not-a-real-password")
# last_used_at is written at most this often per key, so a busy agent does not write on every call.
LAST_USED_RESOLUTION = timedelta(seconds=60)


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _validate_profile(handle: str | None, email: str | None, display_name: str | None) -> None:
    errors: dict[str, str] = {}
    if handle is not None and not HANDLE_RE.match(handle):
        errors["handle"] = "2-39 characters: lowercase letters, digits, '-' or '_'"
    if email is not None and (len(email) > 254 or not EMAIL_RE.match(email)):
        errors["email"] = "not a valid email address"
    if display_name is not None and not (1 <= len(display_name.strip()) <= 100):
        errors["displayName"] = "1-100 characters"
    if errors:
        raise ValidationError(errors)


async def create_user(
    *, handle: str, email: str, password: str | None, display_name: str | None = None, is_admin: bool = False
) -> User:
    handle = handle.strip().lower()
    email = email.strip().lower()
    display_name = (display_name or handle).strip()
    _validate_profile(handle, email, display_name)
    if password is not None and not (8 <= len(password) <= 200):
        raise ValidationError({"password": "8-200 characters"})
    async with in_transaction():
        if await User.filter(handle=handle).exists():
            raise ValidationError({"handle": "already taken"})
        if await User.filter(email=email).exists():
            raise ValidationError({"email": "already registered"})
        try:
            user = await User.create(
                handle=handle,
                email=email,
                display_name=display_name,
                password_hash=_hasher.hash(password) if password else None,
                is_admin=is_admin,
            )
        except IntegrityError as exc:  # a concurrent sign-up won the race
            raise ValidationError({"handle": "already taken"}) from exc
    return user


async def update_profile(user: User, *, display_name: str | None, bio: str | None) -> User:
    _validate_profile(None, None, display_name)
    if bio is not None and len(bio) > 2000:
        raise ValidationError({"bio": "at most 2000 characters"})
    if display_name is not None:
        user.display_name = display_name.strip()
    if bio is not None:
        user.bio = bio
    await user.save(update_fields=["display_name", "bio"])
    return user


# ---- sessions ------------------------------------------------------------------------------


async def login(email: str, password: str) -> tuple[User, str]:
    """Check the password; return the user and a new session token for the cookie."""
    user = await User.get_or_none(email=email.strip().lower())
    try:
        _hasher.verify(user.password_hash if user and user.password_hash else _DUMMY_HASH, password)
    except (VerifyMismatchError, InvalidHashError) as exc:
        raise InvalidCredentials("Email or password is wrong.") from exc
    if user is None or user.password_hash is None:
        raise InvalidCredentials("Email or password is wrong.")
    token = secrets.token_urlsafe(32)
    expires = datetime.now(UTC) + timedelta(days=get_settings().session_days)
    await Session.create(user=user, token_hash=sha256(token), expires_at=expires)
    return user, token


async def logout(token: str) -> None:
    await Session.filter(token_hash=sha256(token)).delete()


async def user_for_session(token: str) -> User | None:
    session = await Session.get_or_none(token_hash=sha256(token)).select_related("user")
    if session is None or session.expires_at <= datetime.now(UTC):
        return None
    return session.user


# ---- API keys ------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewApiKey:
    key: ApiKey
    secret: str  # shown once, never stored


async def create_api_key(user: User, name: str) -> NewApiKey:
    name = name.strip()
    if not (1 <= len(name) <= 100):
        raise ValidationError({"name": "1-100 characters"})
    secret = API_KEY_PREFIX + secrets.token_urlsafe(32)
    key = await ApiKey.create(user=user, name=name, prefix=secret[:12], key_hash=sha256(secret))
    return NewApiKey(key=key, secret=secret)


async def revoke_api_key(user: User, key_id: str) -> ApiKey | None:
    key = await ApiKey.get_or_none(id=key_id, user=user)
    if key is not None and key.revoked_at is None:
        key.revoked_at = datetime.now(UTC)
        await key.save(update_fields=["revoked_at"])
        _key_cache.forget(key.key_hash)  # at once here; other processes within API_KEY_CACHE_SECONDS
    return key


class ApiKeyCache:
    """Recent successful API key lookups, by key hash. An agent sends its key with every request;
    trusting a lookup for a few seconds saves a query (and its CPU) per request, and bounds how
    long a revocation takes to reach every process (`api_key_cache_seconds`)."""

    MAX_ENTRIES = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, ApiKey]] = {}

    def get(self, key_hash: str) -> ApiKey | None:
        entry = self._entries.get(key_hash)
        if entry is None:
            return None
        if entry[0] <= time.monotonic():
            del self._entries[key_hash]
            return None
        return entry[1]

    def put(self, key: ApiKey, seconds: float) -> None:
        if seconds <= 0:
            return
        if len(self._entries) >= self.MAX_ENTRIES:
            del self._entries[next(iter(self._entries))]  # the oldest insertion
        self._entries[key.key_hash] = (time.monotonic() + seconds, key)

    def forget(self, key_hash: str) -> None:
        self._entries.pop(key_hash, None)


_key_cache = ApiKeyCache()


async def authenticate_api_key(secret: str) -> tuple[User, ApiKey] | None:
    """The key's user, or None for an unknown or revoked key. Trusted from the cache for up to
    `api_key_cache_seconds` (the user row too: an admin flag change reaches keys within that bound)."""
    if not secret.startswith(API_KEY_PREFIX):
        return None
    key_hash = sha256(secret)
    now = datetime.now(UTC)
    key = _key_cache.get(key_hash)
    if key is None:
        key = await _look_up_key(key_hash, now)
        if key is None:
            return None
        _key_cache.put(key, get_settings().api_key_cache_seconds)
    elif key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        await ApiKey.filter(id=key.id).update(last_used_at=now)
    return key.user, key


def _columns(model: type[Model], alias: str, prefix: str) -> str:
    return ", ".join(f"{alias}.{c} AS {prefix}{c}" for c in model._meta.fields_db_projection.values())


# A cache miss in one statement: the live key, its user, and last_used_at written if it is stale.
# $1 key hash, $2 now, $3 now - LAST_USED_RESOLUTION.
_LOOK_UP_KEY = f"""
WITH k AS (
    SELECT * FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
), touched AS (
    UPDATE api_keys a SET last_used_at = $2 FROM k
    WHERE a.id = k.id AND (k.last_used_at IS NULL OR k.last_used_at < $3) RETURNING a.id
)
SELECT {_columns(ApiKey, "k", "k_")}, {_columns(User, "u", "u_")}, EXISTS (SELECT FROM touched) AS touched
FROM k JOIN users u ON u.id = k.user_id
"""


async def _look_up_key(key_hash: str, now: datetime) -> ApiKey | None:
    rows = await connections.get("default").execute_query_dict(_LOOK_UP_KEY, [key_hash, now,
                                                                             now - LAST_USED_RESOLUTION])
    if not rows:
        return None
    row = rows[0]
    key = ApiKey._init_from_db(**{c[2:]: v for c, v in row.items() if c.startswith("k_")})
    key.user = User._init_from_db(**{c[2:]: v for c, v in row.items() if c.startswith("u_")})
    if row["touched"]:
        key.last_used_at = now
    return key
