# syntax=docker/dockerfile:1.7
#
# Plaza GPU worker: the Celery `gpu` queue (answers, ad drafting, LoRA training).
# Build from the repository root as the context:
#
#     docker build -f platform/gpu-worker.Dockerfile -t plaza-gpu-worker .
#
# Run one container (one worker process, concurrency 1) per GPU; the host needs
# the NVIDIA driver and the NVIDIA Container Toolkit.
#
# PyPI's torch (and faiss-gpu) wheels carry their own CUDA user-space libraries,
# so the base image's CUDA version matters little; what matters is that the
# host driver is new enough for the CUDA version of the torch wheel.

ARG CUDA_IMAGE=nvidia/cuda:12.9.1-runtime-ubuntu24.04
ARG UV_VERSION=0.11

FROM ghcr.io/astral-sh/uv:${UV_VERSION} AS uv

############################################################################
FROM ${CUDA_IMAGE} AS build

ARG PYTHON_VERSION=3.11
ARG TORCH_VERSION=2.13.0

ENV DEBIAN_FRONTEND=noninteractive \
    # Ubuntu 24.04 ships Python 3.12; use a uv-managed 3.11 under /opt/python
    # (copied to the runtime stage at the same path the venv points to).
    UV_PYTHON_INSTALL_DIR=/opt/python \
    UV_PYTHON_PREFERENCE=only-managed \
    UV_LINK_MODE=copy \
    UV_COMPILE_BYTECODE=1 \
    # If an sdist needs llama.cpp compiled: generic x86-64, not the build host's CPU.
    CMAKE_ARGS="-DGGML_NATIVE=OFF"

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake ca-certificates \
 && rm -rf /var/lib/apt/lists/*

COPY --from=uv /uv /usr/local/bin/uv

RUN uv python install "${PYTHON_VERSION}" \
 && uv venv --python "${PYTHON_VERSION}" /opt/venv
ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# 1. torch from PyPI (the CUDA build), then pinned for every later install.
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install "torch==${TORCH_VERSION}" \
 && echo "torch==${TORCH_VERSION}" > /opt/torch-constraint.txt
ENV UV_CONSTRAINT=/opt/torch-constraint.txt

WORKDIR /app

# 2. The project's dependencies, from pyproject.toml alone (cached until it changes).
COPY pyproject.toml ./
COPY platform/requirements_from_pyproject.py /tmp/
RUN --mount=type=cache,target=/root/.cache/uv \
    python /tmp/requirements_from_pyproject.py gpu > /tmp/requirements.txt \
 && uv pip install -r /tmp/requirements.txt

# 3. The project itself (editable: code runs from /app).
COPY . .
# The repo-root .dockerignore drops ./.env but not platform/.env (Compose's env
# file): keep it out of what the runtime stage copies.
RUN rm -f platform/.env
RUN --mount=type=cache,target=/root/.cache/uv \
    uv pip install -e '.[gpu]'

############################################################################
FROM ${CUDA_IMAGE}

ENV DEBIAN_FRONTEND=noninteractive

# libgomp1: OpenMP runtime for anything compiled in the build stage.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 # Same uid/gid as the web image: the /data volume is shared between them.
 && groupadd --system --gid 10001 plaza \
 && useradd --system --uid 10001 --gid plaza --home-dir /home/plaza --create-home plaza \
 && mkdir -p /data \
 && chown plaza:plaza /data

COPY --from=build /opt/python /opt/python
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    PLAZA_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    HF_HOME=/data/huggingface \
    # Fail loudly if the GPU is missing rather than draft ads on the CPU.
    PLAZA_DEVICE=cuda

WORKDIR /app
USER plaza

# Concurrency 1 with the prefork pool: one child process owns the GPU and keeps
# its model resident. The model is loaded lazily in that child, never in the
# forking parent (CUDA does not survive fork).
CMD ["celery", "-A", "config", "worker", \
     "-Q", "gpu", "-c", "1", "--pool", "prefork", \
     "-n", "gpu@%h", "-l", "info"]
