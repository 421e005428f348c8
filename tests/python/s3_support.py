"""An S3-compatible server for tests and benchmarks, and a proxy in front of it that injects faults.

- :class:`MotoServer` runs ``moto_server`` (moto's S3 in server mode, a real HTTP server) on
  127.0.0.1 with a free port and stops it at the end.
- :class:`FaultProxy` forwards HTTP requests to a server and, for a chosen fraction of them,
  answers ``503 Slow Down`` or closes the connection without answering; requests whose path
  matches ``always_fail`` always get ``500``. It counts what it did.
"""

from __future__ import annotations

import http.client
import os
import random
import re
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

#: Credentials the tests use; moto accepts any. The secret is distinctive so tests can check
#: that cubeforge never prints it.
ACCESS_KEY = "testing-access-key"
SECRET_KEY = "cubeforge-test-secret-DO-NOT-PRINT-7f3a"


def free_port() -> int:
    """A TCP port that was free on 127.0.0.1 a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


class MotoServer:
    """moto's S3 server on 127.0.0.1 with a free port."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("moto_server")
        cmd = [str(exe), "-H", "127.0.0.1", "-p", str(self.port)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(self.port)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        """Environment for a cubeforge (or aws) subprocess talking to this server (or ``endpoint``)."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(
            AWS_ENDPOINT_URL=endpoint or self.url,
            AWS_ACCESS_KEY_ID=ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=SECRET_KEY,
            AWS_REGION="us-east-1",
            # Keep the user's own ~/.aws files out of the tests.
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        )
        return env

    def client(self):
        """A boto3 S3 client for this server."""
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
        )


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class FaultProxy:
    """A threaded HTTP proxy to ``upstream`` that fails a fraction of requests."""

    def __init__(
        self,
        upstream_port: int,
        fail_rate: float = 0.0,
        drop_rate: float = 0.0,
        always_fail: str | None = None,
        delay_s: float = 0.0,
        seed: int = 0,
    ) -> None:
        self.upstream_port = upstream_port
        self.fail_rate = fail_rate
        self.drop_rate = drop_rate
        self.always_fail = re.compile(always_fail) if always_fail else None
        self.delay_s = delay_s
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"forwarded": 0, "failed": 0, "dropped": 0, "always_failed": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if proxy.delay_s:
                    time.sleep(proxy.delay_s)
                with proxy.lock:
                    roll = proxy.rng.random()
                if proxy.always_fail and proxy.always_fail.search(self.path):
                    proxy._count("always_failed")
                    self._error(500, "InternalError")
                    return
                if roll < proxy.fail_rate:
                    proxy._count("failed")
                    self._error(503, "SlowDown")
                    return
                if roll < proxy.fail_rate + proxy.drop_rate:
                    proxy._count("dropped")
                    self.close_connection = True
                    try:
                        self.connection.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                    return
                proxy._count("forwarded")
                self._forward(body)

            def _error(self, status: int, code: str) -> None:
                payload = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>injected</Message></Error>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            def _forward(self, body: bytes) -> None:
                conn = http.client.HTTPConnection("127.0.0.1", proxy.upstream_port, timeout=60)
                try:
                    headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                    conn.request(self.command, self.path, body=body or None, headers=headers)
                    resp = conn.getresponse()
                    data = resp.read()
                    self.send_response(resp.status, resp.reason)
                    for k, v in resp.getheaders():
                        if k.lower() not in _HOP_BY_HOP and k.lower() != "content-length":
                            self.send_header(k, v)
                    if self.command == "HEAD":
                        length = resp.getheader("Content-Length")
                        if length is not None:
                            self.send_header("Content-Length", length)
                    else:
                        self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    if self.command != "HEAD":
                        self.wfile.write(data)
                finally:
                    conn.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _count(self, what: str) -> None:
        with self.lock:
            self.counts[what] += 1

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
