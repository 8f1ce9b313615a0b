# GoCast in a container.
#
#   docker build -t gocast .
#   docker run -p 8000:8000 -p 8001:8001 -v gocast-data:/var/lib/gocast gocast
#
# Put your own config (passwords!) at /etc/gocast/gocast.vibe, for example
# with -v ./gocast.vibe:/etc/gocast/gocast.vibe:ro. docker-compose.yml runs
# it with Redis, Prometheus and Grafana. docs/operations.md, "Docker".

# Stage 1: the wheel, built from this checkout as a release is (its build
# step fetches the dashboard's charts, uPlot, with npm).
FROM python:3.11-slim-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends nodejs npm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN python -m pip install --no-cache-dir build \
    && python -m build --wheel --outdir /dist .

# Stage 2: the wheel and ffmpeg (Ogg-to-HLS and low-latency HLS), run by an
# unprivileged user; state (API keys, mounts, stats history) in a volume.
FROM python:3.11-slim-bookworm
RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 999 --home-dir /var/lib/gocast --create-home --shell /usr/sbin/nologin gocast
COPY --from=build /dist/ /tmp/dist/
RUN python -m pip install --no-cache-dir /tmp/dist/*.whl && rm -rf /tmp/dist
COPY contrib/docker/gocast.vibe /etc/gocast/gocast.vibe
VOLUME /var/lib/gocast
WORKDIR /var/lib/gocast
USER gocast
# 8000: sources, listeners, admin, API; 8001: SHOUTcast v1 sources.
EXPOSE 8000 8001
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health/live', timeout=4)"]
# Logs to stdout (docker logs); the config is found at /etc/gocast/gocast.vibe.
CMD ["twistd", "--nodaemon", "--pidfile=", "gocast"]
