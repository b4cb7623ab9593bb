# syntax=docker/dockerfile:1.7
#
# Plaza web image (CPU). Also runs the `index`/`default` Celery worker and beat.
# Build from the repository root as the context:
#
#     docker build -f platform/web.Dockerfile -t plaza-web .
#     docker compose -f platform/compose.yaml build      # context: .. in compose.yaml
#
# Two stages: `build` has a compiler (llama-cpp-python ships as an sdist and is
# compiled here); the runtime stage only gets the finished virtualenv and source.

ARG PYTHON_VERSION=3.11

############################################################################
FROM python:${PYTHON_VERSION}-slim AS build

ARG TORCH_VERSION=2.13.0

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    # Build llama.cpp for a generic x86-64 (AVX2) CPU, not for whatever CPU the
    # build host has: -march=native would crash with SIGILL on older machines.
    CMAKE_ARGS="-DGGML_NATIVE=OFF"

RUN apt-get update \
 && apt-get install -y --no-install-recommends build-essential cmake \
 && rm -rf /var/lib/apt/lists/*

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

# 1. torch from the PyTorch CPU index (PyPI's wheel is the CUDA build, ~2 GB more).
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install --index-url https://download.pytorch.org/whl/cpu "torch==${TORCH_VERSION}"

# Pin the CPU build for every later install: if a dependency ever asks for a
# different torch, the build fails instead of silently pulling the CUDA wheel.
RUN echo "torch==${TORCH_VERSION}+cpu" > /opt/torch-cpu-constraint.txt
ENV PIP_CONSTRAINT=/opt/torch-cpu-constraint.txt

WORKDIR /app

# 2. The project's dependencies, from pyproject.toml alone (cached until it changes).
COPY pyproject.toml ./
COPY platform/requirements_from_pyproject.py /tmp/
RUN --mount=type=cache,target=/root/.cache/pip \
    python /tmp/requirements_from_pyproject.py cpu > /tmp/requirements.txt \
 && pip install -r /tmp/requirements.txt

# 3. The project itself (editable: code runs from /app, where manage.py is).
COPY . .
# The repo-root .dockerignore drops ./.env but not platform/.env (Compose's env
# file): keep it out of what the runtime stage copies.
RUN rm -f platform/.env
RUN --mount=type=cache,target=/root/.cache/pip \
    pip install -e '.[cpu]'

# Static files for whitenoise, into STATIC_ROOT (/app/staticfiles). It must run
# with DEBUG off (manifest storage), and production settings then demand a secret
# key and allowed hosts: both are throwaways here, the real ones come at run time.
RUN DJANGO_SECRET_KEY=collectstatic-build-only-not-a-secret \
    DJANGO_DEBUG=0 \
    DJANGO_ALLOWED_HOSTS=localhost \
    PLAZA_DATA_DIR=/tmp/plaza-build-data \
    HF_HUB_OFFLINE=1 \
    python manage.py collectstatic --noinput \
 && rm -rf /tmp/plaza-build-data

############################################################################
FROM python:${PYTHON_VERSION}-slim

# libgomp1: OpenMP runtime for the llama.cpp build (torch and faiss bundle their own).
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 \
 && rm -rf /var/lib/apt/lists/*

# Same uid/gid in every Plaza image: the /data volume is shared between them.
# (10001, not 1000: Ubuntu-based images, like the GPU worker's, already use 1000.)
RUN groupadd --system --gid 10001 plaza \
 && useradd --system --uid 10001 --gid plaza --home-dir /home/plaza --create-home plaza \
 && mkdir -p /data \
 && chown plaza:plaza /data

COPY --from=build /opt/venv /opt/venv
# Source stays root-owned (read-only for the app); runtime data goes to /data.
COPY --from=build /app /app

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    DJANGO_SETTINGS_MODULE=config.settings \
    PLAZA_DATA_DIR=/data \
    HF_HUB_OFFLINE=1 \
    # Where a hub download would land if HF_HUB_OFFLINE is turned off: on the volume.
    HF_HOME=/data/huggingface \
    PLAZA_DEVICE=cpu

WORKDIR /app
USER plaza
EXPOSE 8000

# config/gunicorn.py: uvicorn workers on the ASGI app, so an answer's event stream waits on
# the event loop and pins no worker; each worker holds its own embedding model and index
# readers and runs torch/FAISS on PLAZA_WEB_THREADS threads (1), so WEB_CONCURRENCY (one
# per CPU of the container) sets how many cores the web tier uses. GUNICORN_CMD_ARGS and
# flags still win over the file.
ENV PLAZA_BIND=0.0.0.0:8000
CMD ["gunicorn", "-c", "config/gunicorn.py"]
