"""A real WSGI server in a thread, and HTTP/1.0 requests written byte for byte: for requests no
HTTP client library would send (invalid UTF-8, a forged Host, binary bodies)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Sequence
from typing import Any

from werkzeug.serving import make_server


def serve_wsgi(app: Any) -> tuple[Any, threading.Thread]:
    """`app` served on 127.0.0.1 (a free port: `server.port`); `server.shutdown()` stops it."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="wsgi-test-server", daemon=True)
    thread.start()
    return server, thread


def raw_request(
    port: int,
    method: str,
    target: bytes,
    body: bytes = b"",
    headers: Sequence[bytes] = (),
    *,
    timeout: float = 10.0,
) -> tuple[int, bytes]:
    """Send the request to 127.0.0.1:`port` (invalid UTF-8 included): (status, body).

    A `Host` header is added unless `headers` has one.
    """
    head = [method.encode() + b" " + target + b" HTTP/1.0"]
    if not any(header.lower().startswith(b"host:") for header in headers):
        head.append(b"Host: 127.0.0.1:%d" % port)
    head += [*headers, b"Content-Length: %d" % len(body), b"", b""]
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as conn:
        conn.sendall(b"\r\n".join(head) + body)
        # Read by Content-Length: a server may keep the socket open while it drains an unread
        # request body.
        received = b""
        while b"\r\n\r\n" not in received:
            received += _recv(conn)
        header_block, _, response_body = received.partition(b"\r\n\r\n")
        lines = header_block.split(b"\r\n")
        lengths = [
            int(line.split(b":", 1)[1])
            for line in lines
            if line.lower().startswith(b"content-length:")
        ]
        if lengths:
            while len(response_body) < lengths[0]:
                response_body += _recv(conn)
        else:  # HTTP/1.0 without a length: the body ends when the server closes
            while chunk := conn.recv(65536):
                response_body += chunk
    return int(lines[0].split()[1]), response_body


def _recv(conn: socket.socket) -> bytes:
    chunk = conn.recv(65536)
    if not chunk:
        raise ConnectionError("the server closed the connection before the full response")
    return chunk
