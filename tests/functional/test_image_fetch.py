"""``https`` image URLs: only public addresses are ever fetched (checked after resolving, and the
connection pinned to the addresses checked); the fetch itself against a real aiohttp server on
127.0.0.1 (allowed here by overriding the address check, as nothing public is reachable)."""

from __future__ import annotations

import asyncio
import base64

import openai
import pytest
from aiohttp import web

from functions.adapters.image_fetch import fetch_image, public_address, resolve_public
from functions.core.config.images import RouteImagesConfig
from functions.core.errors import BodyTooLargeError, RequestError
from tierup.local_stack import free_port

from ..support import openai_client

PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==")


@pytest.mark.parametrize("address, public", [
    ("127.0.0.1", False), ("10.1.2.3", False), ("172.16.0.1", False), ("192.168.1.1", False),
    ("169.254.169.254", False), ("100.64.0.1", False), ("0.0.0.0", False), ("224.0.0.1", False),
    ("::1", False), ("fe80::1", False), ("fd00::1", False), ("::ffff:127.0.0.1", False), ("::ffff:10.0.0.1", False),
    ("8.8.8.8", True), ("2606:4700:4700::1111", True),
])
def test_only_public_addresses_are_allowed(address, public):
    assert public_address(address) is public


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "169.254.169.254", "[::1]"])
def test_hosts_that_resolve_to_private_addresses_are_refused(host):
    with pytest.raises(RequestError) as caught:
        asyncio.run(fetch_image(f"https://{host}/cat.png", "p", RouteImagesConfig(https=True)))
    assert caught.value.code == "image_url_not_allowed" and caught.value.param == "p"


def test_a_host_with_any_private_address_is_refused():
    # every address must be public: one private among them is enough to refuse
    with pytest.raises(RequestError):
        asyncio.run(resolve_public("localhost", 443, "p", is_allowed=lambda a: a != "127.0.0.1"))


@pytest.fixture(scope="module")
def image_server():
    port = free_port()
    loop = asyncio.new_event_loop()

    async def png(request):
        return web.Response(body=PNG, content_type="image/png")

    async def big(request):
        return web.Response(body=PNG * 100, content_type="image/png")

    async def html(request):
        return web.Response(text="<html>", content_type="text/html")

    async def moved(request):
        raise web.HTTPFound("http://169.254.169.254/latest/meta-data")

    app = web.Application()
    app.router.add_get("/cat.png", png)
    app.router.add_get("/big.png", big)
    app.router.add_get("/page", html)
    app.router.add_get("/moved", moved)
    runner = web.AppRunner(app, access_log=None)

    async def start():
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", port).start()

    import threading
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    asyncio.run_coroutine_threadsafe(start(), loop).result(timeout=10)
    yield f"http://127.0.0.1:{port}"
    asyncio.run_coroutine_threadsafe(runner.cleanup(), loop).result(timeout=10)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=10)


def fetch(url: str, **settings):
    config = RouteImagesConfig(https=True, **settings)
    return asyncio.run(fetch_image(url, "messages[0].content[1].image_url.url", config, is_allowed=lambda a: True))


def test_fetched_image_becomes_a_data_url(image_server):
    assert fetch(f"{image_server}/cat.png") == "data:image/png;base64," + base64.b64encode(PNG).decode()


def test_fetch_refusals_name_the_part(image_server):
    with pytest.raises(BodyTooLargeError) as caught:
        fetch(f"{image_server}/big.png", **{"max-bytes": len(PNG) * 10})
    assert caught.value.status == 413 and caught.value.param == "messages[0].content[1].image_url.url"
    for path, code in (("/page", "invalid_image"), ("/moved", "image_fetch_failed"), ("/none", "image_fetch_failed")):
        with pytest.raises(RequestError) as caught:
            fetch(f"{image_server}{path}")
        assert caught.value.code == code, path


def test_gateway_refuses_https_images_unless_the_route_allows_them(gateway):
    client = openai_client(gateway.url, gateway.key)
    content = [{"type": "text", "text": "what?"}, {"type": "image_url", "image_url": {"url": "https://127.0.0.1/x.png"}}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": content}])
    assert caught.value.body["code"] == "image_url_not_allowed"
    assert caught.value.body["param"] == "messages[0].content[1].image_url.url"


def test_gateway_never_fetches_a_private_address_even_where_https_is_allowed(make_runtime, serve):
    from functions.gateway.composition import build_gateway
    from tierup.local_stack import create_key

    runtime = make_runtime({"routes": {"chat": {"images": {"https": True}}}})
    client = openai_client(serve(build_gateway(runtime)), create_key(runtime, "acme", "pro"))
    content = [{"type": "image_url", "image_url": {"url": "https://169.254.169.254/latest/meta-data"}},
               {"type": "text", "text": "what?"}]
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="chat", messages=[{"role": "user", "content": content}])
    assert caught.value.body["code"] == "image_url_not_allowed"
    assert caught.value.body["param"] == "messages[0].content[0].image_url.url"
