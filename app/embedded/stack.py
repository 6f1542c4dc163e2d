"""All embedded services under one data directory, for ``mlpatron serve`` without config."""

from __future__ import annotations

from pathlib import Path

from app.embedded.child import ChildServer
from app.embedded.mlflow import MlflowServer
from app.embedded.postgres import EmbeddedPostgres
from app.embedded.redis import EmbeddedRedis


class EmbeddedStack:
    """Starts the requested services (each in ``data_dir/<name>``, supervised: restarted on the
    same port if they die) and stops them in reverse.

    ``start`` returns ``{"postgres": url, "redis": url, "mlflow": url}`` for the services
    requested. The service objects stay reachable (``.postgres``, ``.redis``, ``.mlflow``),
    e.g. for tests that restart Redis.
    """

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.postgres: EmbeddedPostgres | None = None
        self.redis: EmbeddedRedis | None = None
        self.mlflow: MlflowServer | None = None
        self.urls: dict[str, str] = {}
        self._started: list[ChildServer] = []

    def start(self, postgres: bool = True, redis: bool = True, mlflow: bool = True) -> dict[str, str]:
        try:
            # Cheapest first, so a broken MLflow venv does not leave the others half-started.
            if postgres and self.postgres is None:
                self.postgres = EmbeddedPostgres(self.data_dir / "postgres")
                self._start("postgres", self.postgres)
            if redis and self.redis is None:
                self.redis = EmbeddedRedis(self.data_dir / "redis")
                self._start("redis", self.redis)
            if mlflow and self.mlflow is None:
                # Nothing needs MLflow until the first job (its tracker waits for it), and it
                # takes seconds to start: serve at once, MLflow comes up in the background.
                self.mlflow = MlflowServer(self.data_dir / "mlflow")
                self.urls["mlflow"] = self.mlflow.start_in_background()
                self._started.append(self.mlflow)
        except BaseException:
            self.stop()
            raise
        return dict(self.urls)

    def _start(self, name: str, service: ChildServer) -> None:
        self.urls[name] = service.start()
        self._started.append(service)

    def stop(self) -> None:
        # Reverse order; keep stopping the rest even if one fails, then re-raise the first error.
        error: BaseException | None = None
        while self._started:
            try:
                self._started.pop().stop()
            except BaseException as exc:
                error = error or exc
        self.postgres = self.redis = self.mlflow = None
        self.urls.clear()
        if error is not None:
            raise error

    def __enter__(self) -> EmbeddedStack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
