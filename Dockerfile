# syntax=docker/dockerfile:1.7
# mlpatron: API (`mlpatron serve --api-only`, the default command) and job watcher
# (`mlpatron watcher`) in one image. Build it with `make image` (buildah, no daemon; see
# docs/deploying.md) or with Docker BuildKit:
#
#   (cd frontend && npm ci && npm run build)        # the SPA is built beforehand and copied in
#   docker build --secret id=pipconf,src=$HOME/.config/pip/pip.conf \
#                --secret id=cacert,src=/etc/ssl/certs/ca-certificates.crt -t mlpatron .
#
# Both secrets are optional: a pip configuration (private index, proxy) and a CA bundle (a
# network that intercepts TLS). They are mounted for the one `pip install` step and never
# stored in a layer.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------- Python package
FROM ${PYTHON_IMAGE} AS python
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /app
# Dependencies alone first, so this layer is reused until pyproject.toml changes.
COPY pyproject.toml README.md ./
RUN --mount=type=secret,id=pipconf,target=/etc/pip.conf \
    --mount=type=secret,id=cacert,target=/run/secrets/cacert \
    set -eu; \
    if [ -s /run/secrets/cacert ]; then export PIP_CERT=/run/secrets/cacert; fi; \
    mkdir -p app && touch app/__init__.py; \
    pip install 'setuptools>=70' . && pip uninstall -y mlpatron; \
    rm -rf app build ./*.egg-info
# The source lives at /app in the final image too; the editable install points there, so
# paths relative to the repository (migrations/, frontend/dist) are the same as in a checkout.
COPY app ./app
COPY migrations ./migrations
RUN pip install --no-deps --no-build-isolation -e . && python -c "import app.main, app.cli"

# ---------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE}
# git: the API resolves `repo@version` to a commit (git ls-remote / shallow fetch). The
# locally bootstrapped base (scripts/build-image.sh) already has it.
RUN set -eu; \
    if ! command -v git >/dev/null; then \
        apt-get update && apt-get install -y --no-install-recommends git ca-certificates \
        && rm -rf /var/lib/apt/lists/*; \
    fi; \
    groupadd --system --gid 10001 mlpatron; \
    useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/mlpatron --create-home \
        --shell /usr/sbin/nologin mlpatron
COPY --from=python /opt/venv /opt/venv
COPY --from=python /app /app
COPY frontend/dist /app/frontend/dist
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    MLPATRON_DATA_DIR=/var/lib/mlpatron
WORKDIR /app
USER 10001:10001
EXPOSE 8000
STOPSIGNAL SIGTERM
CMD ["mlpatron", "serve", "--api-only", "--host", "0.0.0.0"]
