"""The receiver as Stripe and everyone else reach it: ``csonboard serve`` (gunicorn)
on a real socket, fed arbitrary bytes. Whatever arrives, the answer is a 2xx or
a 4xx and the log has no traceback."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import WEBHOOK_SECRET, base_env
from processes import free_port, running, wait_until_ready
from stripe_events import event_body, signed_headers

pytestmark = pytest.mark.slow


class Served:
    def __init__(self, port: int, log: Path) -> None:
        self.port = port
        self.log = log

    def send(self, raw: bytes) -> int:
        """Send ``raw`` as one request; the status code of the answer (0 when
        the server closed the connection without one)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as conn:
            conn.sendall(raw)
            conn.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        status_line = answer.split(b"\r\n", 1)[0].split()
        return int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    home = tmp_path_factory.mktemp("socket")
    env = {**base_env(home), "CSONBOARD_RECEIVER_WORKERS": "1"}
    port = free_port()
    log = home / "serve.log"
    with running("serve", "--no-worker", "--port", str(port), env=env, log=log):
        wait_until_ready(f"http://127.0.0.1:{port}")
        yield Served(port, log)


def _request(headers: list[tuple[bytes, bytes]], body: bytes, chunked: bool) -> bytes:
    lines = [b"POST /webhooks/stripe HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
    lines += [name + b": " + value for name, value in headers]
    if chunked:
        lines.append(b"Transfer-Encoding: chunked")
        framed = (f"{len(body):x}\r\n".encode() + body + b"\r\n") if body else b""
        return b"\r\n".join(lines) + b"\r\n\r\n" + framed + b"0\r\n\r\n"
    lines.append(f"Content-Length: {len(body)}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


HEADER_NAMES = st.sampled_from(
    [b"Stripe-Signature", b"Content-Type", b"X-Anything", b"Accept", b"Content-Encoding"]
)
# Header values as bytes: what an HTTP client can put on the wire, and worse.
HEADER_VALUES = st.one_of(
    st.binary(max_size=120).filter(lambda v: b"\r" not in v and b"\n" not in v),
    st.sampled_from([b"application/json", b"t=1,v1=\xe9\xe9", b"t=abc,v1=", b"\x00"]),
)


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    headers=st.lists(st.tuples(HEADER_NAMES, HEADER_VALUES), max_size=4),
    body=st.one_of(st.binary(max_size=512), st.just(event_body(created=1).encode())),
    chunked=st.booleans(),
)
def test_arbitrary_bytes_on_the_socket_never_get_a_5xx(
    served: Served, headers: list[tuple[bytes, bytes]], body: bytes, chunked: bool
) -> None:
    status = served.send(_request(headers, body, chunked))

    assert 200 <= status < 500 or status == 0, status


def test_after_the_fuzz_a_signed_event_is_still_accepted_and_nothing_was_a_traceback(
    served: Served,
) -> None:
    body = event_body(created=int(time.time()))
    signed = signed_headers(body, WEBHOOK_SECRET)
    headers = [(name.encode(), value.encode()) for name, value in signed.items()]

    status = served.send(_request(headers, body.encode(), chunked=True))

    assert status == 200
    logged = served.log.read_text(errors="replace")
    assert "Traceback" not in logged, logged[-3000:]
