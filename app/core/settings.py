"""Every setting, read once from the environment. Empty means "use the embedded default"."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    data_dir: Path = field(
        default_factory=lambda: Path(os.environ.get("MLPATRON_DATA_DIR", ".mlpatron")).resolve()
    )
    database_url: str = field(default_factory=lambda: os.environ.get("DATABASE_URL", ""))
    # Connections per process (empty: tortoise's 5). A watcher following a thousand Jobs queued
    # their transitions and log writes behind five.
    database_pool_size: int | None = field(
        default_factory=lambda: int(os.environ["DATABASE_POOL_SIZE"]) if os.environ.get("DATABASE_POOL_SIZE") else None
    )
    redis_url: str = field(default_factory=lambda: os.environ.get("REDIS_URL", ""))
    mlflow_tracking_uri: str = field(default_factory=lambda: os.environ.get("MLFLOW_TRACKING_URI", ""))
    # Public MLflow address shown to users; defaults to the tracking URI.
    mlflow_public_url: str = field(default_factory=lambda: os.environ.get("MLFLOW_PUBLIC_URL", ""))
    executor: str = field(default_factory=lambda: os.environ.get("EXECUTOR", "local"))
    # Local paths and file:// git URLs: only for tests and the embedded default.
    allow_local_repos: bool = field(default_factory=lambda: _bool("ALLOW_LOCAL_REPOS", False))
    # Ports a production git URL may name (https only): others would let users probe internal services.
    git_allowed_ports: tuple[int, ...] = field(
        default_factory=lambda: tuple(int(p) for p in os.environ.get("GIT_ALLOWED_PORTS", "443").split(",")
                                      if p.strip())
    )
    gpu_catalog_path: str = field(default_factory=lambda: os.environ.get("GPU_CATALOG_PATH", ""))
    secure_cookies: bool = field(default_factory=lambda: _bool("SECURE_COOKIES", False))
    session_days: int = field(default_factory=lambda: int(os.environ.get("SESSION_DAYS", "14")))
    public_url: str = field(
        default_factory=lambda: os.environ.get("PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")
    )
    stripe_secret_key: str = field(default_factory=lambda: os.environ.get("STRIPE_SECRET_KEY", ""))
    stripe_webhook_secret: str = field(default_factory=lambda: os.environ.get("STRIPE_WEBHOOK_SECRET", ""))
    stripe_api_base: str = field(default_factory=lambda: os.environ.get("STRIPE_API_BASE", ""))
    # Handed to the SPA with each deposit so Stripe.js can confirm the PaymentIntent.
    stripe_publishable_key: str = field(default_factory=lambda: os.environ.get("STRIPE_PUBLISHABLE_KEY", ""))
    # Seconds added to every estimate for image pull, checkout and start-up.
    startup_overhead_seconds: int = field(
        default_factory=lambda: int(os.environ.get("STARTUP_OVERHEAD_SECONDS", "120"))
    )
    # Estimates beyond these make the run DRYRUN_FAILED (a platform error says which was passed).
    max_estimate_seconds: int = field(
        default_factory=lambda: int(os.environ.get("MAX_ESTIMATE_SECONDS", str(90 * 86400)))
    )
    max_estimate_cents: int = field(default_factory=lambda: int(os.environ.get("MAX_ESTIMATE_CENTS", "100000000")))
    dryrun_deadline_seconds: int = field(
        default_factory=lambda: int(os.environ.get("DRYRUN_DEADLINE_SECONDS", "1800"))
    )
    # Python environment a local job sees (its bin dir first on PATH); default: the platform's own.
    job_python_bin: str = field(default_factory=lambda: os.environ.get("JOB_PYTHON_BIN", ""))
    cancel_grace_seconds: float = field(
        default_factory=lambda: float(os.environ.get("CANCEL_GRACE_SECONDS", "5"))
    )
    smtp_host: str = field(default_factory=lambda: os.environ.get("SMTP_HOST", ""))
    smtp_port: int = field(default_factory=lambda: int(os.environ.get("SMTP_PORT", "25")))
    email_from: str = field(default_factory=lambda: os.environ.get("EMAIL_FROM", "mlpatron@localhost"))
    # First retry of an undelivered email; each further retry waits twice as long (capped at an hour).
    email_retry_base_seconds: float = field(
        default_factory=lambda: float(os.environ.get("EMAIL_RETRY_BASE_SECONDS", "30"))
    )
    # Sign-ups and logins per client IP per hour (guessing passwords, mass sign-up).
    auth_attempts_per_hour: int = field(default_factory=lambda: int(os.environ.get("AUTH_ATTEMPTS_PER_HOUR", "60")))
    # Per user; an API key gets the lower ceiling (agents post faster than people read).
    discussions_per_hour: int = field(default_factory=lambda: int(os.environ.get("DISCUSSIONS_PER_HOUR", "10")))
    discussions_per_hour_api_key: int = field(
        default_factory=lambda: int(os.environ.get("DISCUSSIONS_PER_HOUR_API_KEY", "5"))
    )
    comments_per_hour: int = field(default_factory=lambda: int(os.environ.get("COMMENTS_PER_HOUR", "30")))
    comments_per_hour_api_key: int = field(
        default_factory=lambda: int(os.environ.get("COMMENTS_PER_HOUR_API_KEY", "15"))
    )
    # How long an API key lookup is trusted: a revoked key (or a changed user) may keep working this
    # long on processes other than the one that revoked it. 0 disables the cache.
    api_key_cache_seconds: float = field(
        default_factory=lambda: float(os.environ.get("API_KEY_CACHE_SECONDS", "5"))
    )
    feedback_per_day: int = field(default_factory=lambda: int(os.environ.get("FEEDBACK_PER_DAY", "10")))
    # Requests to /graphql per minute, per API key or browser session, and per IP without either.
    requests_per_minute: int = field(default_factory=lambda: int(os.environ.get("REQUESTS_PER_MINUTE", "600")))
    anonymous_requests_per_minute: int = field(
        default_factory=lambda: int(os.environ.get("ANONYMOUS_REQUESTS_PER_MINUTE", "300"))
    )
    # Dryruns spend GPU time the platform pays for: per user, in any 24 hours and at once.
    dryruns_per_day: int = field(default_factory=lambda: int(os.environ.get("DRYRUNS_PER_DAY", "20")))
    concurrent_dryruns: int = field(default_factory=lambda: int(os.environ.get("CONCURRENT_DRYRUNS", "3")))
    # The embedded default runs the job watcher inside the API process; replicas pass --api-only.
    run_watcher: bool = field(default_factory=lambda: _bool("RUN_WATCHER", True))


_settings: Settings | None = None


def get_settings() -> Settings:
    global _settings
    if _settings is None:
        _settings = Settings()
    return _settings


def override_settings(**changes: Any) -> Settings:
    """Replace the process settings (the CLI and tests resolve embedded URLs, then call this)."""
    global _settings
    from dataclasses import replace

    _settings = replace(get_settings(), **changes)
    return _settings
