"""The webhooks' one POST against servers on 127.0.0.1 that answer badly: every way ends within the
deadline as a named failure, an answer is read only up to its caps, https checks the certificate."""

from __future__ import annotations

import ssl

import pytest
import trio
import trustme

from videoroomd.webhooks.http_post import MAX_ANSWER_BODY, Connection, DeliveryFailed, Target, post


async def serve_once(nursery: trio.Nursery, answer: bytes, *, tls: ssl.SSLContext | None = None,
                     then_wait: bool = False) -> tuple[int, list[bytes]]:
    """A server that reads a request, sends ``answer`` and closes (or waits); returns its port and
    what it was sent."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    received: list[bytes] = []

    async def handle(stream: trio.abc.Stream) -> None:
        if tls is not None:
            stream = trio.SSLStream(stream, tls, server_side=True)
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                data += await stream.receive_some(65536)
            received.append(data)
            await stream.send_all(answer)
            if then_wait:
                await trio.sleep_forever()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    nursery.start_soon(trio.serve_listeners, handle, listeners)
    return listeners[0].socket.getsockname()[1], received


OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


async def test_a_2xx_answer_after_an_interim_one_is_a_delivery_and_the_request_says_what_it_carries():
    async with trio.open_nursery() as nursery:
        port, received = await serve_once(nursery, b"HTTP/1.1 100 Continue\r\n\r\n" + OK)
        status = await post(Target.of(f"http://127.0.0.1:{port}/in?x=1"), b'{"a":1}', [("X-Videoroomd-Event", "e")],
                            timeout=5)
        assert status == 200
        head = received[0].decode().lower()
        assert head.startswith("post /in?x=1 http/1.1\r\n")
        for line in (f"host: 127.0.0.1:{port}", "content-type: application/json", "content-length: 7",
                     "x-videoroomd-event: e"):
            assert line in head
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize(("answer", "reason"), [
    (b"HTTP/1.1 301 Moved\r\nLocation: http://127.0.0.1:1/\r\nContent-Length: 0\r\n\r\n", "redirect"),
    (b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n", "status"),
    (b"", "connection"),                                   # closed without a word
    (b"SSH-2.0-OpenSSH_9.2\r\n\r\n", "protocol"),          # not HTTP
    (b"HTTP/1.1 200 OK\r\nX-Big: " + b"a" * 40000 + b"\r\n\r\n", "protocol"),  # a head over the cap
])
async def test_a_bad_answer_is_a_named_failure(answer, reason):
    async with trio.open_nursery() as nursery:
        port, _ = await serve_once(nursery, answer)
        with pytest.raises(DeliveryFailed) as failed:
            await post(Target.of(f"http://127.0.0.1:{port}/"), b"{}", [], timeout=5)
        assert failed.value.reason == reason
        nursery.cancel_scope.cancel()


async def test_an_endless_answer_is_read_up_to_its_cap_and_a_silent_one_until_the_deadline():
    async with trio.open_nursery() as nursery:
        chunk = b"%x\r\n%s\r\n" % (8192, b"x" * 8192)
        port, _ = await serve_once(nursery, b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk * 8,
                                   then_wait=True)
        with trio.fail_after(2):  # the body never ends; what was read past the cap is let go
            assert await post(Target.of(f"http://127.0.0.1:{port}/"), b"{}", [], timeout=5) == 200
        assert 8 * 8192 > MAX_ANSWER_BODY
        port, _ = await serve_once(nursery, b"", then_wait=True)
        started = trio.current_time()
        with pytest.raises(DeliveryFailed) as failed:
            await post(Target.of(f"http://127.0.0.1:{port}/"), b"{}", [], timeout=0.5)
        assert failed.value.reason == "timeout" and trio.current_time() - started < 1.5
        nursery.cancel_scope.cancel()


async def test_https_checks_the_certificate():
    authority = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("localhost").configure_cert(server_context)
    trusting = ssl.create_default_context()
    authority.configure_trust(trusting)
    async with trio.open_nursery() as nursery:
        port, received = await serve_once(nursery, OK, tls=server_context)
        assert await post(Target.of(f"https://localhost:{port}/"), b"{}", [], timeout=5, tls=trusting) == 200
        assert received
        with pytest.raises(DeliveryFailed) as failed:  # the system's authorities do not know this one
            await post(Target.of(f"https://localhost:{port}/"), b"{}", [], timeout=5)
        assert failed.value.reason == "tls" and "certificate" in failed.value.detail
        nursery.cancel_scope.cancel()


async def test_a_kept_connection_the_server_closed_is_replaced_without_a_failure():
    async with trio.open_nursery() as nursery:
        # answers one request per connection, and closes it without saying so beforehand
        port, received = await serve_once(nursery, OK)
        connection = Connection(Target.of(f"http://127.0.0.1:{port}/"))
        for _ in range(3):
            assert await connection.post(b"{}", [], timeout=5) == 200
            await trio.sleep(0.05)  # the server's close has arrived
        assert len(received) == 3 and connection.opened == 3
        # one that says it closes is not kept
        port, received = await serve_once(nursery, b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
        connection = Connection(Target.of(f"http://127.0.0.1:{port}/"))
        assert await connection.post(b"{}", [], timeout=5) == 200
        assert connection._stream is None
        await connection.aclose()
        nursery.cancel_scope.cancel()
