# Headless ki2api (no tray): the OpenAI- and Anthropic-compatible API for a server or a container.
#   KIRO_ACCESS_TOKEN=... KIRO_REFRESH_TOKEN=... docker compose up -d      (see docker-compose.yml)
# Inside a container the server must listen on 0.0.0.0. ki2api refuses that with the public default API key unless
# KI2API_ALLOW_DEFAULT_KEY_OFF_LOOPBACK=1 says the port is published on this machine's loopback only, which
# docker-compose.yml does. `docker run -p 8989:8989` needs API_KEY set to a secret of yours instead.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/ki2api \
    KI2API_HOME=/data

COPY pyproject.toml README.md /src/
COPY ki2api_tray /src/ki2api_tray
RUN pip install --no-cache-dir /src \
 && rm -rf /src \
 && useradd --uid 1000 --home-dir /home/ki2api --create-home ki2api \
 && mkdir -p /home/ki2api/.aws/sso/cache /data \
 && chown -R ki2api:ki2api /home/ki2api /data

# Numeric, so "runAsNonRoot" checks (Kubernetes) can verify it.
USER 1000:1000
WORKDIR /home/ki2api
# Fails the image build when a dependency or module is missing (starts the server on a free loopback port).
RUN ki2api-tray --selftest
# Config, logs and state, including the renewed login when the tokens come from the environment: keep it in a
# volume and a restarted container needs no new tokens.
VOLUME ["/data"]

EXPOSE 8989
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8989/health', timeout=4)"]
ENTRYPOINT ["ki2api-tray"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8989"]
