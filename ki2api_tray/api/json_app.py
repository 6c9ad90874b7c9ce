"""JsonApp: a Starlette application with the few FastAPI conveniences the API uses, and nothing else.

ki2api parses every body with its own translators and serves no OpenAPI schema, so FastAPI's validation and
schema layer was pure start-up cost: importing it (its OpenAPI models are built with pydantic at import time)
took most of the time `serve` needed to become healthy (docs/startup.md). Routes are declared with `get` /
`post` decorators; an endpoint takes the request (or nothing) and returns a Response or a JSON-ready value.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import Lifespan

Endpoint = Callable[..., Awaitable[Any]]
E = TypeVar("E", bound=Endpoint)
H = TypeVar("H", bound=Callable[..., Awaitable[Response]])


class JsonApp(Starlette):
    def __init__(self, *, lifespan: Lifespan[Any] | None = None, json_response: type[JSONResponse] = JSONResponse):
        super().__init__(lifespan=lifespan)
        self._json_response = json_response

    def get(self, path: str) -> Callable[[E], E]:
        return self._route(path, "GET")

    def post(self, path: str) -> Callable[[E], E]:
        return self._route(path, "POST")

    def exception_handler(self, kind: type[Exception]) -> Callable[[H], H]:
        def register(handler: H) -> H:
            self.add_exception_handler(kind, handler)
            return handler

        return register

    def _route(self, path: str, method: str) -> Callable[[E], E]:
        def register(endpoint: E) -> E:
            takes_request = bool(inspect.signature(endpoint).parameters)
            json_response = self._json_response

            async def handle(request: Request) -> Response:
                result = await (endpoint(request) if takes_request else endpoint())
                return result if isinstance(result, Response) else json_response(result)

            self.add_route(path, handle, methods=[method])
            return endpoint

        return register
