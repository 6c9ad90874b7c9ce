# Headless ki2api (no tray): the OpenAI- and Anthropic-compatible API for a server or a container.
#   docker compose up -d      (docker-compose.yml mounts the Kiro token and asks for API_KEY)
# Inside a container the server must listen on 0.0.0.0, and ki2api refuses to do that with the public default
# API key, because anyone who reaches the port could use your Kiro account: set API_KEY to a secret of yours.
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HOME=/home/ki2api \
    KI2API_HOME=/tmp/ki2api

COPY pyproject.toml README.md /src/
COPY ki2api_tray /src/ki2api_tray
RUN pip install --no-cache-dir /src \
 && rm -rf /src \
 && useradd --uid 1000 --home-dir /home/ki2api --create-home ki2api \
 && mkdir -p /home/ki2api/.aws/sso/cache \
 && chown -R ki2api:ki2api /home/ki2api

# Numeric, so "runAsNonRoot" checks (Kubernetes) can verify it; docker-compose.yml may run it as your own UID.
USER 1000:1000
WORKDIR /home/ki2api
# Fails the image build when a dependency or module is missing (starts the server on a free loopback port).
RUN ki2api-tray --selftest

EXPOSE 8989
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8989/health', timeout=4)"]
ENTRYPOINT ["ki2api-tray"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8989"]
