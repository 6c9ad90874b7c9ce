"""Where image downloads may connect: the address check and the transport that pins the checked address.

A client's `image_url` makes ki2api open a connection. While ki2api listens beyond this machine, whoever
holds the key must not be able to reach the host's own network through it (cloud metadata at
169.254.169.254, a router, a printer). A name is resolved here once, the address is checked, and the
connection goes to exactly that address (TLS still verifies the name), so a name that resolves to a
private address, or re-resolves to one between check and connect (DNS rebinding), is refused. Redirects
are sent through this transport again hop by hop, so each hop is checked the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# (network, what a person calls it): the reason is shown in the 400.
_BLOCKED = [
    (ipaddress.ip_network(net), reason)
    for net, reason in (
        ("0.0.0.0/8", "an unspecified address"),
        ("::/128", "an unspecified address"),
        ("127.0.0.0/8", "a loopback address"),
        ("::1/128", "a loopback address"),
        ("10.0.0.0/8", "a private network address"),
        ("172.16.0.0/12", "a private network address"),
        ("192.168.0.0/16", "a private network address"),
        ("fc00::/7", "a private network address"),
        ("169.254.0.0/16", "a link-local address"),
        ("fe80::/10", "a link-local address"),
        ("100.64.0.0/10", "a carrier-grade NAT address"),
        ("224.0.0.0/4", "a multicast address"),
        ("ff00::/8", "a multicast address"),
        ("240.0.0.0/4", "a reserved address"),
    )
]


def address_refusal(address: IPAddress) -> str | None:
    """Why an image download must not connect to `address`, or None when it may."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 is 127.0.0.1
    for network, reason in _BLOCKED:
        if address.version == network.version and address in network:
            return reason
    return None


class AddressRefused(Exception):
    """An image URL leads to an address the policy refuses; the message names the host and the reason."""

    def __init__(self, host: str, reason: str) -> None:
        super().__init__(f"{host} is {reason}" if _is_literal(host) else f"{host} resolves to {reason}")
        self.host = host
        self.reason = reason


def _is_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


class PinnedTransport(httpx.AsyncBaseTransport):
    """Resolve, check, then connect to the checked address; `refusal` decides (tests may narrow it)."""

    def __init__(
        self,
        refusal: Callable[[IPAddress], str | None] = address_refusal,
        inner: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self._refusal = refusal
        # No proxy from the environment: through a proxy, the address connected to could not be checked.
        self._inner = inner or httpx.AsyncHTTPTransport(trust_env=False, limits=httpx.Limits(max_connections=32))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        port = request.url.port or (443 if request.url.scheme == "https" else 80)
        address = await self._permitted_address(host, port)
        extensions = dict(request.extensions)
        if not _is_literal(host):
            extensions["sni_hostname"] = host  # TLS checks the certificate against the name, not the address
        pinned = httpx.Request(
            request.method,
            request.url.copy_with(host=str(address)),
            headers=request.headers,  # keeps the original Host header
            stream=request.stream,
            extensions=extensions,
        )
        return await self._inner.handle_async_request(pinned)

    async def _permitted_address(self, host: str, port: int) -> IPAddress:
        try:
            found = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except OSError as exc:
            raise httpx.ConnectError(f"cannot resolve {host}: {exc}") from exc
        first_reason = "no usable address"
        for *_, sockaddr in found:
            address = ipaddress.ip_address(str(sockaddr[0]).split("%")[0])
            reason = self._refusal(address)
            if reason is None:
                return address
            first_reason = first_reason if first_reason != "no usable address" else reason
        raise AddressRefused(host, first_reason)

    async def aclose(self) -> None:
        await self._inner.aclose()
