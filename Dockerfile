# One Dockerfile, two images (docker-compose.yml picks the target of each service):
#   docker build --target bot -t imagine-bot:bot .        the bot: the torch-free core (requirements/core.txt), small
#   docker build --target worker -t imagine-bot:worker .  a GPU worker: torch + the worker extra (CUDA, several GB)
# Dependencies are installed before the code is copied, so a change to the code rebuilds only the last layers.
FROM python:3.11.14-slim-bookworm AS base

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IMAGINE_DATA_DIR=/data \
    HF_HOME=/data/huggingface

WORKDIR /app
# /data: the HF cache and built test models (a volume); /models: the owner's checkpoints, LoRAs and registry.toml,
# mounted read-only by compose (never copied in: .dockerignore keeps my-models/ and other model folders out).
RUN useradd --create-home --uid 1000 imagine \
    && mkdir -p /data /models && chown imagine /data

# --- the bot: no torch, no diffusers ---
FROM base AS bot
# Exactly the lock's releases for the core (hashes checked, nothing resolved afresh; README: installing).
COPY requirements/core.txt requirements/core.txt
RUN pip install --require-hashes --no-deps -r requirements/core.txt
# .dockerignore keeps .env (secrets), .venv, .git, caches and model folders out of the image.
COPY . .
RUN pip install --no-deps . && pip check
USER 1000
VOLUME ["/data"]
# Prometheus /metrics of the whole deployment.
EXPOSE 9100
CMD ["imagine", "bot"]

# --- a worker (the default target: `docker build .`) ---
FROM base AS worker
# torch first and pinned, so nothing below can swap it. PyPI's Linux wheel includes CUDA; for a CPU-only image
# build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX=
# hadolint ignore=DL3013
RUN pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.13.0
# Then exactly the lock's releases for the core and the worker extra, in their own layer.
COPY requirements/worker.txt requirements/worker.txt
RUN pip install --require-hashes --no-deps -r requirements/worker.txt
COPY . .
RUN pip install --no-deps . && pip check
USER 1000
VOLUME ["/data"]
# Prometheus /metrics of this worker.
EXPOSE 9101
CMD ["imagine", "worker"]
