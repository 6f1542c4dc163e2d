# syntax=docker/dockerfile:1.7
# mlpatron: API (`mlpatron serve --api-only`, the default command) and job watcher
# (`mlpatron watcher`) in one image.
#
#   docker build -t registry.example.org/mlpatron:0.1.0 .
#   docker build --build-arg BUILD_FRONTEND=0 ...   # API-only image, skip the SPA
#
# The SPA is built when frontend/package.json exists (and BUILD_FRONTEND is not 0); the
# build context is bind-mounted, so a repository without frontend/ still builds.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm
ARG NODE_IMAGE=node:20-bookworm-slim

# ---------------------------------------------------------------- SPA (optional)
FROM ${NODE_IMAGE} AS frontend
ARG BUILD_FRONTEND=auto
WORKDIR /build
RUN --mount=type=bind,target=/context \
    --mount=type=cache,target=/root/.npm \
    set -eu; \
    mkdir -p /build/dist; \
    if [ "$BUILD_FRONTEND" != "0" ] && [ -f /context/frontend/package.json ]; then \
        mkdir -p /build/src; \
        tar -C /context/frontend --exclude=./node_modules --exclude=./dist -cf - . | tar -C /build/src -xf -; \
        cd /build/src; \
        if [ -f package-lock.json ]; then npm ci --no-audit --no-fund; else npm install --no-audit --no-fund; fi; \
        npm run build; \
        cp -a dist/. /build/dist/; \
    else \
        echo "frontend/package.json not found (or BUILD_FRONTEND=0): image without the SPA"; \
    fi

# ---------------------------------------------------------------- Python package
FROM ${PYTHON_IMAGE} AS python
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
# The source lives at /app in the final image too; the editable install points there, so
# paths relative to the repository (migrations/, frontend/dist) are the same as in a checkout.
WORKDIR /app
COPY pyproject.toml README.md ./
COPY app ./app
COPY migrations ./migrations
RUN pip install --upgrade pip setuptools \
    && pip install -e . \
    && python -c "import app.main, app.cli"

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}
# git: the API resolves `repo@version` to a commit (git ls-remote / shallow fetch).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 mlpatron \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/mlpatron --create-home \
       --shell /usr/sbin/nologin mlpatron
COPY --from=python /opt/venv /opt/venv
COPY --from=python /app /app
COPY --from=frontend /build/dist /app/frontend/dist
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLPATRON_DATA_DIR=/var/lib/mlpatron
WORKDIR /app
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
CMD ["mlpatron", "serve", "--api-only", "--host", "0.0.0.0"]
