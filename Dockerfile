# One image for the bot and the workers (docker-compose.yml picks the command). Build: docker compose build
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    IMAGINE_DATA_DIR=/data \
    HF_HOME=/data/huggingface

WORKDIR /app

# torch first and pinned, so nothing below can swap it. PyPI's Linux wheel includes CUDA; for a CPU-only image
# build with --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_INDEX=
RUN pip install ${TORCH_INDEX:+--index-url "$TORCH_INDEX"} torch==2.13.0

# Then exactly the lock's releases for the core and the worker extra (hashes checked, nothing resolved afresh; see
# README: installing), in their own layer so a code change does not reinstall them.
COPY requirements/worker.txt requirements/worker.txt
RUN pip install --require-hashes --no-deps -r requirements/worker.txt

# .dockerignore keeps .env (secrets), .venv, .git and caches out of the image.
COPY . .
RUN pip install --no-deps . \
    && pip check \
    && useradd --create-home --uid 1000 imagine \
    && mkdir -p /data /models && chown imagine /data

USER imagine
# /data: the HF cache and built test models; /models: the owner's checkpoints, LoRAs and registry.toml (read-only).
VOLUME ["/data"]
# Prometheus /metrics: the bot (9100) and a worker (9101).
EXPOSE 9100 9101
CMD ["imagine", "worker"]
