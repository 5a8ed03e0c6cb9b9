"""Where a webhook may go (SSRF): checked when an endpoint is written and again at every attempt,
after DNS resolution, and the connection goes to an address that was checked.

Outside development a URL must be ``https``, carry no credentials, and every address its host
resolves to must be public: not loopback, private (RFC 1918), unique-local (``fc00::/7``),
link-local, multicast, unspecified, shared (``100.64.0.0/10``), documentation or otherwise
reserved, and not a cloud metadata service (some of which sit on public addresses). IPv6 forms
that carry an IPv4 address (mapped, 6to4, NAT64, Teredo) are judged by that address too. In
development (``cxops up``) http and local receivers are allowed, so a receiver on 127.0.0.1 works.

Why resolve ourselves and pin: if the HTTP client resolved the name again, a name that answered
a public address to our check could answer 127.0.0.1 to the connection (DNS rebinding). So the
request goes to the checked IP, with the name in ``Host`` and, for https, as the TLS server name
(SNI and certificate verification), which httpx takes from the ``sni_hostname`` extension.
"""

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Cloud metadata services: AWS, ECS, GCP and Azure IMDS (169.254.169.254), AWS over IPv6,
#: Alibaba, Oracle, Azure's wire server (a public address!).
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(address)
    for address in (
        "169.254.169.254",
        "169.254.170.2",
        "fd00:ec2::254",
        "100.100.100.200",
        "192.0.0.192",
        "168.63.129.16",
    )
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

#: ``(host, port)`` → the addresses it resolves to, as text.
Resolver = Callable[[str, int], Awaitable[list[str]]]


class RefusedDestination(ValueError):
    """The URL may not receive webhooks; the message says why, for the endpoint's owner."""


def address_refusal(address: IPAddress) -> str | None:
    """Why a webhook may not go to ``address`` outside development, or None."""
    if address in METADATA_ADDRESSES:
        return f"{address} is a cloud metadata address"
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            reason = address_refusal(embedded)
            if reason is not None:
                return f"{address} carries {embedded}: {reason}"
    checks = (
        ("is_unspecified", "unspecified"),
        ("is_loopback", "a loopback address"),
        ("is_link_local", "a link-local address"),
        ("is_multicast", "a multicast address"),
        ("is_private", "a private or unique-local address"),
        ("is_reserved", "a reserved address"),
    )
    for attribute, what in checks:
        if getattr(address, attribute):
            return f"{address} is {what}"
    if not address.is_global:
        return f"{address} is not a public address"
    return None


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def url_refusal(url: str, *, checked: bool) -> str | None:
    """What is wrong with ``url`` before any DNS lookup, or None. ``checked`` is False only in
    development, where http and local addresses are allowed."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        return f"not a URL: {exc}"
    if parsed.scheme not in ("http", "https") or not parsed.host:
        return "a webhook URL is http(s)://host/..."
    if parsed.userinfo:
        return "a webhook URL carries no credentials: the signature authenticates the sender"
    if parsed.fragment:
        return "a webhook URL has no fragment"
    if not checked:
        return None
    if parsed.scheme != "https":
        return "a webhook URL must be https"
    literal = _ip_literal(parsed.host)
    if literal is not None:
        return address_refusal(literal)
    return None


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


async def system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(
        host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
    )
    return [str(info[4][0]) for info in infos]


@dataclass(frozen=True, slots=True)
class Destination:
    """A URL and the addresses it may be reached at, in the order to try them."""

    url: httpx.URL
    addresses: tuple[IPAddress, ...]

    def request_for(self, address: IPAddress) -> tuple[httpx.URL, dict[str, str], dict[str, Any]]:
        """URL, extra headers and httpx extensions that reach ``address`` while speaking to
        the URL's host: pinned, so no second resolution happens."""
        host_header = self.url.netloc.decode("ascii")
        extensions: dict[str, Any] = {}
        if self.url.scheme == "https":
            extensions["sni_hostname"] = self.url.host
        return self.url.copy_with(host=str(address)), {"host": host_header}, extensions


async def resolve(url: str, *, checked: bool, resolver: Resolver = system_resolver) -> Destination:
    """The destination of ``url``; :class:`RefusedDestination` if it may not receive webhooks
    (any refused address refuses the URL: a name must not mix public and internal answers)."""
    reason = url_refusal(url, checked=checked)
    if reason is not None:
        raise RefusedDestination(reason)
    parsed = httpx.URL(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 80)
    literal = _ip_literal(parsed.host)
    if literal is not None:
        return Destination(url=parsed, addresses=(literal,))
    try:
        answers = await resolver(parsed.host, port)
    except OSError as exc:
        raise RefusedDestination(f"{parsed.host} does not resolve: {exc}") from exc
    addresses = tuple(dict.fromkeys(ipaddress.ip_address(answer) for answer in answers))
    if not addresses:
        raise RefusedDestination(f"{parsed.host} does not resolve")
    if checked:
        for address in addresses:
            reason = address_refusal(address)
            if reason is not None:
                raise RefusedDestination(f"{parsed.host} resolves to a refused address: {reason}")
    return Destination(url=parsed, addresses=addresses)


async def check_url(url: str, *, checked: bool, resolver: Resolver = system_resolver) -> None:
    """The check when an endpoint is written: the URL's form, and outside development where its
    name resolves to now (it is checked again at every attempt)."""
    if checked:
        await resolve(url, checked=True, resolver=resolver)
        return
    reason = url_refusal(url, checked=False)
    if reason is not None:
        raise RefusedDestination(reason)
