"""``https`` image URLs fetched by the gateway itself, on routes that allow them.

A URL in a request is an address the client wants the gateway's network to reach, so:

* the host is resolved once and **every** address must be public (not private, loopback,
  link-local, multicast, reserved or unspecified: no ``169.254.169.254``, no ``10.0.0.0/8``);
* the connection goes to the addresses just checked (a pinned resolver), so a DNS answer that
  changes between the check and the connection (DNS rebinding) cannot redirect it;
* redirects are not followed; the body is read up to the route's ``max-bytes`` and no further;
  only png, jpeg, gif and webp are taken; the whole fetch has a deadline.

The image then travels as a data URL, so every tier gets bytes the gateway checked, and the
cache key hashes the content. Any failure is the client's to fix: a 400 (413 when too large)
naming the part. aiohttp is imported only when a request has an ``https`` image.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

from ..core.chat import ImagePart
from ..core.config.images import RouteImagesConfig
from ..core.errors import BodyTooLargeError, RequestError
from ..core.images import FORMATS, data_url


def public_address(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


async def resolve_public(host: str, port: int, param: str,
                         is_allowed: Callable[[str], bool] = public_address) -> list[tuple[int, str]]:
    """(family, address) of every address ``host`` resolves to, all of them allowed; else 400."""
    loop = asyncio.get_running_loop()
    try:
        infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError:
        raise RequestError(f"the image URL's host {host!r} does not resolve", param=param,
                           code="image_fetch_failed") from None
    addresses = [(family, sockaddr[0]) for family, _, _, _, sockaddr in infos]
    if not addresses or not all(is_allowed(address) for _, address in addresses):
        raise RequestError(f"the image URL's host {host!r} is not a public address; only public addresses "
                           "are fetched", param=param, code="image_url_not_allowed")
    return addresses


def _pinned_resolver(addresses: list[tuple[int, str]]):
    from aiohttp.abc import AbstractResolver

    class PinnedResolver(AbstractResolver):
        """Answers with the addresses already checked, whatever DNS would say now."""

        async def resolve(self, host: str, port: int = 0, family: int = socket.AF_INET) -> list[dict]:
            return [{"hostname": host, "host": address, "port": port, "family": fam, "proto": 0,
                     "flags": socket.AI_NUMERICHOST} for fam, address in addresses]

        async def close(self) -> None:
            return None

    return PinnedResolver()


async def fetch_image(url: str, param: str, settings: RouteImagesConfig, *,
                      is_allowed: Callable[[str], bool] = public_address) -> str:
    """The image at ``url`` as a data URL."""
    import aiohttp

    parts = urlsplit(url)
    if not parts.hostname:
        raise RequestError("the image URL has no host", param=param, code="invalid_image")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = await resolve_public(parts.hostname, port, param, is_allowed)
    connector = aiohttp.TCPConnector(resolver=_pinned_resolver(addresses), use_dns_cache=False, limit=1)
    timeout = aiohttp.ClientTimeout(total=settings.fetch_timeout_s)
    try:
        async with aiohttp.ClientSession(connector=connector, timeout=timeout, auto_decompress=False) as session:
            async with session.get(url, allow_redirects=False) as response:
                if response.status != 200:
                    raise RequestError(f"fetching the image answered HTTP {response.status} (redirects are not "
                                       "followed)", param=param, code="image_fetch_failed")
                media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if media_type not in FORMATS:
                    raise RequestError(f"the image URL serves {media_type or 'no content type'!r}; supported: "
                                       "png, jpeg, gif, webp", param=param, code="invalid_image")
                chunks, size = [], 0
                async for chunk in response.content.iter_chunked(65536):
                    size += len(chunk)
                    if size > settings.max_bytes:  # stop reading at the limit, whatever the body's length
                        raise BodyTooLargeError(f"the image is over the route's {settings.max_bytes} bytes",
                                                param=param, code="image_too_large")
                    chunks.append(chunk)
                body = b"".join(chunks)
    except (asyncio.TimeoutError, aiohttp.ClientError) as exc:
        raise RequestError(f"fetching the image failed ({type(exc).__name__})", param=param,
                           code="image_fetch_failed") from None
    return data_url(media_type, body)


async def inline_images(parts: list[tuple[str, ImagePart]], settings: RouteImagesConfig) -> None:
    """Fetch every part's image (at once) and put it in the request as a data URL."""
    urls = await asyncio.gather(*(fetch_image(part.image_url.url, f"{param}.image_url.url", settings)
                                  for param, part in parts))
    for (_, part), url in zip(parts, urls):
        part.image_url.url = url
