"""Image content parts: data URLs decoded, and a request's images checked against its route's
limits (``[routes.NAME.images]``), each refusal naming the part (``messages[0].content[1]``).

No I/O here: fetching ``https`` images is ``adapters/image_fetch.py``'s business.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from dataclasses import dataclass

from .chat import ChatRequest, ImagePart
from .config.images import RouteImagesConfig
from .errors import BodyTooLargeError, RequestError

#: image media types every tier takes (OpenAI's list, and Bedrock's ``png|jpeg|gif|webp``)
FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
           "image/webp": "webp"}


@dataclass(frozen=True, slots=True)
class ImageData:
    media_type: str
    #: Bedrock's name of the format: png, jpeg, gif or webp
    format: str
    data: bytes


def _header(url: str) -> tuple[str, str]:
    """(media type, base64 payload) of a ``data:`` URL; ValueError says what is wrong."""
    head, comma, payload = url.partition(",")
    if not comma or not head.startswith("data:"):
        raise ValueError("is not a data URL")
    media_type, _, encoding = head[5:].partition(";")
    if encoding != "base64":
        raise ValueError("must be base64-encoded (data:image/png;base64,...)")
    if media_type.lower() not in FORMATS:
        raise ValueError(f"has media type {media_type or '(none)'!r}; supported: png, jpeg, gif, webp")
    return media_type.lower(), payload


def decoded_size(url: str) -> int:
    """The size a data URL's image decodes to, without decoding it."""
    payload = _header(url)[1]
    return len(payload) * 3 // 4 - payload[-2:].count("=")


def decode_data_url(url: str) -> ImageData:
    media_type, payload = _header(url)
    try:
        data = base64.b64decode(payload, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("is not valid base64") from None
    return ImageData(media_type=media_type, format=FORMATS[media_type], data=data)


def data_url(media_type: str, data: bytes) -> str:
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"


def image_parts(chat: ChatRequest) -> Iterator[tuple[str, ImagePart]]:
    """Every image part of a request, with its param path."""
    for index, message in enumerate(chat.messages):
        if message.content is None or isinstance(message.content, str):
            continue
        for part_index, part in enumerate(message.content):
            if part.type == "image_url":
                yield f"messages[{index}].content[{part_index}]", part


def check_images(chat: ChatRequest, route_name: str, settings: RouteImagesConfig) -> list[tuple[str, ImagePart]]:
    """Refuse what the route does not take; return the ``https`` parts the gateway must fetch."""
    to_fetch: list[tuple[str, ImagePart]] = []
    count = 0
    for param, part in image_parts(chat):
        count += 1
        if count > settings.max_count:
            raise RequestError(f"route {route_name!r} takes at most {settings.max_count} images per request",
                               param=param, code="too_many_images")
        url = part.image_url.url
        if url.startswith("https://"):
            if not settings.https:
                raise RequestError(f"route {route_name!r} takes images as data URLs only (https image URLs "
                                   f"are off: routes.{route_name}.images.https)", param=f"{param}.image_url.url",
                                   code="image_url_not_allowed")
            to_fetch.append((param, part))
            continue
        try:
            size = decoded_size(url)
        except ValueError as exc:
            raise RequestError(f"the image URL {exc}", param=f"{param}.image_url.url", code="invalid_image") from None
        if size > settings.max_bytes:
            raise BodyTooLargeError(f"the image is {size} bytes; route {route_name!r} takes at most "
                                    f"{settings.max_bytes}", param=param, code="image_too_large")
    return to_fetch
