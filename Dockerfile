# syntax=docker/dockerfile:1
#
# One image per component, all from this file:
#
#   docker build --build-arg COMPONENT=feedback -t cxops-feedback .
#
# COMPONENT is gateway, feedback, routing, scorecard or journey. The image holds a virtual
# environment with that component's package, cxops-common (and cxops-stats where the component
# uses it) and their locked dependencies (nothing of the other services, no uv, no build tools,
# no sources outside the venv), runs as uid 10001, and serves on $PORT (8000). Its two entry
# points:
#
#   (default)                              uvicorn cxops.<component>.app:create_app --factory
#   python -m cxops.common.migrate <component>    the migrations, a step run before the server starts
#
# and the gateway's image also has `python -m cxops.gateway.create_key` for the first API key.
# `make images` builds all five.

# The base image's tag stays in each FROM line, so that no build can fall back to :latest.
ARG PYTHON_VERSION=3.11
ARG UV_VERSION=0.13.9

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

# --- builder: resolve from uv.lock into /app/.venv ----------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS builder
ARG COMPONENT
RUN case "${COMPONENT}" in \
      gateway|feedback|routing|scorecard|journey) ;; \
      *) echo "build with --build-arg COMPONENT=gateway|feedback|routing|scorecard|journey" >&2; \
         exit 1 ;; \
    esac

COPY --from=uv /uv /usr/local/bin/uv
# Byte-code compiled at build time (the final user cannot write into the venv); copies, not
# links, out of the cache mount; the image's own Python, never a downloaded one; the venv at
# the path it keeps in the final stage (its scripts' shebangs point there).
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3 \
    UV_PROJECT_ENVIRONMENT=/app/.venv \
    UV_NO_PROGRESS=1

WORKDIR /src

# The dependencies first, from the lock and the workspace's pyproject files alone: this layer is
# rebuilt only when uv.lock or a pyproject changes, not on every source edit.
COPY uv.lock pyproject.toml ./
COPY libs/common/pyproject.toml libs/common/
COPY libs/stats/pyproject.toml libs/stats/
COPY gateway/pyproject.toml gateway/
COPY services/feedback/pyproject.toml services/feedback/
COPY services/routing/pyproject.toml services/routing/
COPY services/scorecard/pyproject.toml services/scorecard/
COPY services/journey/pyproject.toml services/journey/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-workspace --package "cxops-${COMPONENT}"

# Then the workspace's own packages: cxops-common, cxops-stats where the component depends on it,
# and cxops-<component>, installed as wheels (--no-editable) so that the venv is self-contained
# and the sources can stay behind.
COPY libs/common/src libs/common/src
COPY libs/stats/src libs/stats/src
COPY gateway/src gateway/src
COPY services/feedback/src services/feedback/src
COPY services/routing/src services/routing/src
COPY services/scorecard/src services/scorecard/src
COPY services/journey/src services/journey/src
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --package "cxops-${COMPONENT}" \
 && /app/.venv/bin/python -c "import cxops.${COMPONENT}.app, cxops.common.migrate"

# --- runtime: the venv on a clean slim Python ----------------------------------------------------
FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
ARG COMPONENT
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=https://github.com/cxops/cxops

LABEL org.opencontainers.image.title="cxops-${COMPONENT}" \
      org.opencontainers.image.description="cxops ${COMPONENT}: customer-experience operations (one component of the suite)" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.vendor="cxops"

RUN groupadd --system --gid 10001 cxops \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin cxops

# Owned by root and read-only to the server: the code cannot be changed by the process running it.
COPY --from=builder /app/.venv /app/.venv

ENV PATH=/app/.venv/bin:${PATH} \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    CXOPS_COMPONENT=${COMPONENT} \
    PORT=8000

# The one place the server writes besides /tmp: journey's uploaded event logs and job inputs
# (CXOPS_JOURNEY_DATA_DIR), a volume in compose and Kubernetes that takes this owner.
RUN mkdir -p /var/lib/cxops/journey && chown -R 10001:10001 /var/lib/cxops

WORKDIR /app
USER 10001:10001
EXPOSE 8000

# /healthz: the process is alive (stdlib only: the image has no curl). Compose checks /readyz.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"]

# The shell only expands the component and the port, then `exec` makes uvicorn PID 1, so that it
# receives SIGTERM and drains (the orchestrator's grace period should exceed the 20 s here).
# Override the command to run the migrations: `python -m cxops.common.migrate <component>`.
CMD ["/bin/sh", "-c", "exec uvicorn \"cxops.${CXOPS_COMPONENT}.app:create_app\" --factory --host 0.0.0.0 --port \"${PORT}\" --lifespan on --no-access-log --timeout-graceful-shutdown 20"]
