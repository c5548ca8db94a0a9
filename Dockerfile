# syntax=docker/dockerfile:1.7
# RecForge image: `recforge serve`, `feast`, the pipeline steps and the rollout controller.
#
#   CPU:   docker build -t ghcr.io/recforge/recforge:0.1.0 .
#   CUDA:  docker build --build-arg VARIANT=cuda --build-arg CUDA_ARCHITECTURES="80;90" \
#            -t ghcr.io/recforge/recforge:0.1.0-cuda .
#
# The builder compiles ops/ with CMake into a wheel (the README's `pip install` with
# --no-build-isolation); the runtime stage holds only that wheel installed with torch==2.13.0,
# runs as UID 10001 and keeps nothing writable but /tmp (the chart mounts an emptyDir there).

ARG PYTHON_VERSION=3.11
ARG VARIANT=cpu
ARG CUDA_VERSION=12.8
ARG CUDA_IMAGE_TAG=12.8.1-devel-ubuntu22.04

# nvcc and the CUDA libraries, copied into the builder for VARIANT=cuda only.
FROM nvidia/cuda:${CUDA_IMAGE_TAG} AS cuda-toolkit

FROM python:${PYTHON_VERSION}-slim-bookworm AS builder-cpu
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential=12.9 cmake=3.25.1-1 \
    && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir scikit-build-core==1.1.2 pybind11==3.1.0
ENV RECFORGE_CUDA=OFF

FROM builder-cpu AS builder-cuda
ARG CUDA_VERSION
ARG CUDA_ARCHITECTURES="80;90"
COPY --from=cuda-toolkit /usr/local/cuda-${CUDA_VERSION} /usr/local/cuda
# CUDAARCHS initialises CMAKE_CUDA_ARCHITECTURES; RECFORGE_CUDA=ON fails the build without nvcc.
ENV PATH=/usr/local/cuda/bin:${PATH} \
    CUDACXX=/usr/local/cuda/bin/nvcc \
    CUDAARCHS=${CUDA_ARCHITECTURES} \
    RECFORGE_CUDA=ON

# builder-${VARIANT} is one of this file's stages (builder-cpu or builder-cuda); the scanners
# take it for an untagged image:
# checkov:skip=CKV_DOCKER_7:builder-${VARIANT} is a stage of this file, not an image to tag
# hadolint ignore=DL3006
FROM builder-${VARIANT} AS builder
WORKDIR /src
COPY pyproject.toml CMakeLists.txt README.md ./
COPY ops ./ops
COPY models ./models
COPY serving ./serving
COPY pipelines ./pipelines
COPY feature_repo ./feature_repo
RUN pip wheel --no-cache-dir --no-build-isolation --no-deps --wheel-dir /wheels .

FROM python:${PYTHON_VERSION}-slim-bookworm AS runtime
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
ENV VIRTUAL_ENV=/opt/recforge/venv \
    PATH=/opt/recforge/venv/bin:${PATH} \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
RUN groupadd --gid 10001 recforge \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin recforge
# The Feast repo is the installed package; the chart mounts the cluster feature_store.yaml over it.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    python -m venv "${VIRTUAL_ENV}" \
    && pip install --no-cache-dir torch==2.13.0 /wheels/recforge-*.whl \
    && ln -s "$(python -c 'import feature_repo, os; print(os.path.dirname(feature_repo.__file__))')" \
        /opt/recforge/feature_repo \
    && recforge --help > /dev/null
USER 10001:10001
WORKDIR /tmp
# Kubernetes probes each workload on its own endpoint (the chart); one image runs many commands.
HEALTHCHECK NONE
CMD ["recforge", "--help"]
