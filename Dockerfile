# syntax=docker/dockerfile:1
#
# YRD Hazmat: the worker, the simulator and the rest of the `yrd-hazmat` CLI.
#
#   docker build -t yrd-hazmat .
#   docker run --rm -e KAFKA_BOOTSTRAP=kafka:9092 -e REDIS_URL=redis://redis:6379/0 yrd-hazmat
#   docker run --rm -e KAFKA_BOOTSTRAP=kafka:9092 yrd-hazmat simulate --vehicles 30
#
# Settings come from the environment (KAFKA_BOOTSTRAP, REDIS_URL, YRD_*; see the
# README's "Configuration"). deploy/docker-compose.yml runs the whole stack.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its dependencies into a virtualenv --------
FROM ${PYTHON_IMAGE} AS build

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Every dependency has manylinux wheels for CPython 3.11, so no compiler is needed.
COPY pyproject.toml README.md ./
COPY yrd_hazmat ./yrd_hazmat
COPY agents ./agents
RUN pip install --prefer-binary . \
    && yrd-hazmat --help >/dev/null

# --- runtime: the virtualenv only, run by an unprivileged user ----------------
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="yrd-hazmat" \
      org.opencontainers.image.description="Stream processor for hazmat trucks in the Yangtze River Delta: pings in, alerts out" \
      org.opencontainers.image.licenses="Apache-2.0"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HOME=/var/lib/yrd-hazmat

# A fixed numeric uid lets Kubernetes check runAsNonRoot. Faust writes its data
# dir (<app id>-data) into the working directory, so the user owns it.
RUN groupadd --system --gid 10001 yrd \
    && useradd --system --uid 10001 --gid yrd --home-dir /var/lib/yrd-hazmat \
       --shell /usr/sbin/nologin yrd \
    && install -d -o yrd -g yrd -m 0750 /var/lib/yrd-hazmat

COPY --from=build /opt/venv /opt/venv

USER 10001:10001
WORKDIR /var/lib/yrd-hazmat

# Prometheus /metrics of the worker (YRD_METRICS_PORT).
EXPOSE 9464

ENTRYPOINT ["yrd-hazmat"]
CMD ["worker"]
