"""The TLS context of the upstream clients: built once, early, and off the server's start-up path.

Loading the CA bundle costs tens of milliseconds of CPU, and the server used to pay it twice (the Kiro client and
the image fetcher) before it could answer its first request. `prepare()` starts building the context in a worker
thread as soon as the process knows it will serve (OpenSSL parses the bundle without holding the GIL, so this
overlaps with the rest of the start); `context()` hands out the finished one. httpx builds it, so SSL_CERT_FILE
and SSL_CERT_DIR still apply where the client trusts the environment.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import threading
from concurrent.futures import Future

import httpx

_lock = threading.Lock()
_contexts: dict[bool, Future[ssl.SSLContext]] = {}


def prepare() -> None:
    """Start building the contexts the server will ask for; returns at once."""
    _future(trust_env=True)
    _future(trust_env=False)


async def context(*, trust_env: bool) -> ssl.SSLContext:
    """The verifying context for a client that does (or does not) honour SSL_CERT_FILE / SSL_CERT_DIR."""
    return await asyncio.wrap_future(_future(trust_env=trust_env))


def _future(*, trust_env: bool) -> Future[ssl.SSLContext]:
    # Without those variables both kinds are the same context; build it once.
    key = trust_env and bool(os.environ.get("SSL_CERT_FILE") or os.environ.get("SSL_CERT_DIR"))
    with _lock:
        future = _contexts.get(key)
        if future is None:
            future = _contexts[key] = Future()
            threading.Thread(target=_build, args=(future, key), name="ki2api-tls", daemon=True).start()
    return future


def _build(future: Future[ssl.SSLContext], trust_env: bool) -> None:
    try:
        future.set_result(httpx.create_ssl_context(trust_env=trust_env))
    except BaseException as exc:  # handed to whoever awaits the context
        future.set_exception(exc)
