"""`mlpatron`: serve | watcher | migrate | users | apikeys | credit | ledger | k8s | export-schema.

With no DATABASE_URL / REDIS_URL / MLFLOW_TRACKING_URI every command uses the embedded default
under the data directory (started on demand, stopped on exit).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import typer

from app.core.settings import Settings, get_settings, override_settings
from app.core.telemetry import configure_logging, setup_tracing

cli = typer.Typer(no_args_is_help=True, add_completion=False, help="mlpatron: ML experiment crowdfunding.")
users_cli = typer.Typer(no_args_is_help=True, help="Manage users.")
apikeys_cli = typer.Typer(no_args_is_help=True, help="Manage API keys.")
credit_cli = typer.Typer(no_args_is_help=True, help="Admin credit grants.")
ledger_cli = typer.Typer(no_args_is_help=True, help="Ledger tools.")
k8s_cli = typer.Typer(no_args_is_help=True, help="Kubernetes tools (EXECUTOR=kubernetes).")
cli.add_typer(users_cli, name="users")
cli.add_typer(apikeys_cli, name="apikeys")
cli.add_typer(credit_cli, name="credit")
cli.add_typer(ledger_cli, name="ledger")
cli.add_typer(k8s_cli, name="k8s")

T = TypeVar("T")


@contextlib.contextmanager
def environment(*, redis: bool = False, mlflow: bool = False) -> Iterator[Settings]:
    """Resolve settings; start embedded servers for whatever is needed and not configured."""
    from app.embedded.stack import EmbeddedStack

    settings = get_settings()
    need_pg, need_redis = not settings.database_url, redis and not settings.redis_url
    need_mlflow = mlflow and not settings.mlflow_tracking_uri
    if not (need_pg or need_redis or need_mlflow):
        yield settings
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with EmbeddedStack(settings.data_dir) as stack:
        urls = stack.start(postgres=need_pg, redis=need_redis, mlflow=need_mlflow)
        changes: dict[str, Any] = {}
        if need_pg:
            changes["database_url"] = urls["postgres"]
            # A fully local platform may run experiments from local repositories.
            changes["allow_local_repos"] = True
        if need_redis:
            changes["redis_url"] = urls["redis"]
        if need_mlflow:
            changes["mlflow_tracking_uri"] = urls["mlflow"]
        yield override_settings(**changes)


def _run_db(settings: Settings, fn: Callable[[], Awaitable[T]]) -> T:
    from app.core.db import close_db, init_db

    async def go() -> T:
        await init_db(settings.database_url)
        try:
            return await fn()
        finally:
            await close_db()

    return asyncio.run(go())


@cli.command()
def migrate() -> None:
    """Apply database migrations."""
    from app.core.db import close_db, migrate_db

    with environment() as settings:
        async def go() -> None:
            await migrate_db(settings.database_url)
            await close_db()

        asyncio.run(go())
        typer.echo("migrations applied")


@cli.command()
def serve(
    host: str = typer.Option("127.0.0.1", help="Interface to bind."),
    port: int = typer.Option(8000, help="Port to bind."),
    api_only: bool = typer.Option(False, "--api-only", help="No in-process watcher (production replicas)."),
) -> None:
    """Migrate, then serve the API (and the SPA when built) on http://HOST:PORT."""
    import uvicorn

    from app.api.http_limits import MAX_BODY_BYTES
    from app.core.db import close_db, migrate_db
    from app.embedded.child import sigterm_unwinds
    from app.main import WEBSOCKETS, create_app

    configure_logging()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it: unwinding (instead of dying)
    # lets `environment` stop every embedded server it started.
    with sigterm_unwinds(), environment(redis=True, mlflow=True) as settings:
        async def prepare() -> None:
            await migrate_db(settings.database_url)
            await close_db()

        asyncio.run(prepare())
        override_settings(run_watcher=not api_only)
        typer.echo(f"mlpatron on http://{host}:{port}/graphql (data in {settings.data_dir})")
        # Websocket messages are bounded like HTTP bodies (uvicorn's default is 16 MiB).
        uvicorn.run(create_app(), host=host, port=port, log_level="info", proxy_headers=True,
                    ws_max_size=MAX_BODY_BYTES, **WEBSOCKETS)


@cli.command()
def watcher() -> None:
    """Follow Kubernetes Jobs into the database and reconcile runs (EXECUTOR=kubernetes).

    Several may run: a PostgreSQL advisory lock lets one act at a time.
    """
    import signal

    from app.execution.k8s_watcher import run_watcher_service
    from app.jobs.models import Job
    from app.main import start_runtime, stop_runtime

    configure_logging()
    setup_tracing("mlpatron-watcher")
    with environment(redis=True) as settings:
        # This process's executor must not start a second watcher; the service below is it.
        settings = override_settings(run_watcher=False, executor="kubernetes")

        async def active() -> list[tuple[str, dict[str, Any]]]:
            jobs = await Job.filter(status__in=["pending", "running"], executor="kubernetes")
            return [(str(j.id), j.handle) for j in jobs if j.handle]

        async def go() -> None:
            services = await start_runtime(settings)
            services.lifecycle.start_reconciler()  # funded runs without a job, jobs never submitted
            stop = asyncio.Event()
            for sig in (signal.SIGTERM, signal.SIGINT):
                asyncio.get_running_loop().add_signal_handler(sig, stop.set)
            try:
                await run_watcher_service(services.lifecycle.recorder, active_jobs=active, stop=stop,
                                          database_url=settings.database_url)
            finally:
                await stop_runtime(services)

        asyncio.run(go())


@users_cli.command("create")
def users_create(
    handle: str = typer.Option(...), email: str = typer.Option(...),
    password: str = typer.Option(..., prompt=True, hide_input=True, confirmation_prompt=False),
    display_name: str = typer.Option(None), admin: bool = typer.Option(False, "--admin"),
) -> None:
    """Create a user (the first admin is created this way)."""
    from app.core.errors import DomainError
    from app.funding import wallets

    with environment() as settings:
        try:
            user = _run_db(settings, lambda: wallets.create_user_with_wallet(
                handle=handle, email=email, password=password, display_name=display_name, is_admin=admin))
        except DomainError as err:
            typer.echo(f"error: {err.message}", err=True)
            raise typer.Exit(2) from err
        typer.echo(f"created user {user.handle} ({user.id}){' [admin]' if admin else ''}")


@apikeys_cli.command("create")
def apikeys_create(user: str = typer.Option(..., help="User handle."), name: str = typer.Option("cli")) -> None:
    """Create an API key for a user; prints the secret once."""
    from app.accounts import services
    from app.accounts.models import User

    with environment() as settings:
        async def go() -> str | None:
            row = await User.get_or_none(handle=user)
            return None if row is None else (await services.create_api_key(row, name)).secret

        secret = _run_db(settings, go)
        if secret is None:
            typer.echo(f"error: no user {user!r}", err=True)
            raise typer.Exit(2)
        typer.echo(secret)


@credit_cli.command("grant")
def credit_grant(
    user: str = typer.Option(..., help="User handle."), cents: int = typer.Option(..., help="Amount in cents."),
    reason: str = typer.Option(..., help="Recorded in the ledger memo."),
) -> None:
    """Grant promotional credit to a user's wallet (credit is spent before cash)."""
    from app.accounts.models import User
    from app.core.errors import DomainError
    from app.funding import wallets
    from app.funding.models import Wallet

    with environment() as settings:
        async def go() -> Wallet | None:
            row = await User.get_or_none(handle=user.strip().lower())
            if row is None:
                return None
            await wallets.grant_credit(row.id, cents, reason, granted_by="the command line")
            return await Wallet.get(user_id=row.id)

        try:
            wallet = _run_db(settings, go)
        except DomainError as err:
            typer.echo(f"error: {err.message}", err=True)
            raise typer.Exit(2) from err
        if wallet is None:
            typer.echo(f"error: no user {user!r}", err=True)
            raise typer.Exit(2)
        typer.echo(f"granted {cents} cents to {user}: credit {wallet.credit_cents}, cash {wallet.cash_cents}")


@ledger_cli.command("check")
def ledger_check() -> None:
    """Recompute every balance from the postings; exit 1 on any mismatch (each one printed)."""
    from app.funding.audit import check_ledger

    with environment() as settings:
        problems = _run_db(settings, check_ledger)
    for line in problems:
        typer.echo(f"MISMATCH {line}")
    if problems:
        typer.echo(f"ledger check failed: {len(problems)} problem(s)", err=True)
        raise typer.Exit(1)
    typer.echo("ledger check passed: every transaction sums to zero and every balance matches its postings")


@k8s_cli.command("cancel-orphan")
def k8s_cancel_orphan(name: str) -> None:
    """Delete the Kubernetes Job NAME if no platform job tracks it; exit 1 if refused."""
    from app.core.errors import DomainError
    from app.execution.kubernetes import KubernetesExecutor
    from app.execution.orphans import cancel_orphan_kubernetes_job
    from app.jobs.recorder import JobRecorder

    async def go() -> Any:
        executor = KubernetesExecutor(JobRecorder(), watch=False)  # the watcher deployment follows Jobs
        try:
            return await cancel_orphan_kubernetes_job(executor, name)
        finally:
            await executor.close()

    with environment() as settings:
        if settings.executor != "kubernetes":
            typer.echo("refused: EXECUTOR is not kubernetes, so this platform has no Kubernetes Jobs", err=True)
            raise typer.Exit(1)
        try:
            result = _run_db(settings, go)
        except DomainError as err:
            typer.echo(f"refused: {err.message}", err=True)
            raise typer.Exit(1) from None
    typer.echo(f"deleted Kubernetes Job {name} (job id {result.job_id})" if result.deleted
               else f"Kubernetes Job {name} was already gone")


@cli.command("export-schema")
def export_schema(output: Path = typer.Option(Path("schema.graphql"), help="Where to write the SDL.")) -> None:
    """Write the GraphQL SDL generated from the code."""
    from app.schema import schema

    output.write_text(schema.as_str() + "\n")
    typer.echo(f"wrote {output}")


def main() -> None:
    cli()
