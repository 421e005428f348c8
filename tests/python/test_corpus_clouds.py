"""Corpus, category "clouds": object stores that refuse or cannot be reached, on S3 (moto), GCS
(fake-gcs-server) and Azure (Azurite), each started on 127.0.0.1 (cloud_support.py).

Wrong credentials, no credentials at all, a bucket or container that does not exist, and an
endpoint where nothing listens (a closed port): every case checks through :func:`corpus.refused`
that cubeforge exits with status 2 and one line naming the URL and what went wrong (the service's
error code and message, not its XML or JSON document), that a local source is left as it was, and
that a local destination holds nothing a reader takes for a finished store.

Requests that fail are not retried here (``--retries 0``) where the failure is one object_store
treats as transient (a refused connection; fake-gcs-server's 500 for a missing bucket), so that
each case takes well under a second.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from cloud_support import AZURITE_KEY, AuthMotoServer
from corpus import refused
from s3_support import free_port

MISSING = "cf-no-such-bucket"


@pytest.fixture(scope="module")
def example(cubeforge, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus-clouds") / "io.zarr"
    cubeforge.example_io(out, days=20, seed=0)
    return out


@pytest.fixture(scope="module")
def bucket(cloud, example, cubeforge) -> str:
    """A bucket holding a copy of the example store at ``io.zarr``."""
    name = f"cf-corpus-{uuid.uuid4().hex[:8]}"
    cloud.create_bucket(name)
    subprocess.run([str(cubeforge.binary), "cp", "--quiet", str(example), f"{cloud.scheme}://{name}/io.zarr"],
                   env=cloud.env(), check=True, timeout=120)
    return name


#: What each service answers for a bucket or container that does not exist.
MISSING_BUCKET = {
    "s3": ("NoSuchBucket", "The specified bucket does not exist"),
    "gs": ("no bucket named", MISSING),
    "az": ("ContainerNotFound", "The specified container does not exist"),
}


def test_missing_bucket_listing(cubeforge, cloud):
    url = f"{cloud.scheme}://{MISSING}/cube.zarr"
    line = refused(cubeforge.binary, ["--retries", "0", "ls", url], expect=[url, *MISSING_BUCKET[cloud.scheme]],
                   env=cloud.env())
    assert "<" not in line and "{" not in line, line


def test_missing_bucket_upload(cubeforge, cloud, example):
    url = f"{cloud.scheme}://{MISSING}/io.zarr"
    # fake-gcs-server answers an upload to a missing bucket with a bare 404 (its JSON upload API).
    expect = ["not found, 404"] if cloud.scheme == "gs" else list(MISSING_BUCKET[cloud.scheme])
    # The first request is the destination's lock: nothing was copied.
    line = refused(cubeforge.binary, ["cp", example, url], expect=[url, *expect], keep=[example],
                   env=cloud.env())
    assert "<" not in line and "{" not in line, line


def test_missing_bucket_build_input(cubeforge, cloud, tmp_path):
    recipe = Path(__file__).resolve().parents[2] / "recipes" / "tutorial.yaml"
    url = f"{cloud.scheme}://{MISSING}/io.zarr"
    out = tmp_path / "cube.zarr"
    refused(cubeforge.binary, ["--retries", "0", "build", recipe, "--input", url, "--output", out],
            expect=[url, MISSING_BUCKET[cloud.scheme][0]], dest=[out], env=cloud.env())


def test_unreachable_endpoint(cubeforge, cloud, bucket, tmp_path):
    closed = f"http://127.0.0.1:{free_port()}"
    env = cloud.env_via(closed)
    url = f"{cloud.scheme}://{bucket}/io.zarr"
    refused(cubeforge.binary, ["--retries", "0", "ls", url], expect=[url, f"cannot reach {closed}"], env=env)
    out = tmp_path / "down.zarr"
    refused(cubeforge.binary, ["--retries", "0", "sync", url, out], expect=[url, f"cannot reach {closed}"],
            dest=[out], env=env)
    refused(cubeforge.binary, ["--retries", "0", "info", url], expect=[url, f"cannot reach {closed}"], env=env)


def test_wrong_credentials(cubeforge, cloud, example, bucket, tmp_path):
    s = cloud.scheme
    if s == "gs":
        pytest.skip("fake-gcs-server checks no token: any credentials (or none) are accepted")
    if s == "s3":
        server = AuthMotoServer()
        try:
            url = f"s3://{server.bucket}/io.zarr"
            wrong_secret = server.env(server.access_key, "not-the-secret")
            refused(cubeforge.binary, ["cp", example, url], expect=[url, "SignatureDoesNotMatch", "403 Forbidden"],
                    keep=[example], env=wrong_secret)
            refused(cubeforge.binary, ["ls", url], expect=[url, "access denied, 403 Forbidden"], env=wrong_secret)
            unknown = server.env("AKIAUNKNOWNKEY000000", "not-the-secret")
            refused(cubeforge.binary, ["cp", example, url], expect=[url, "InvalidAccessKeyId"], keep=[example],
                    env=unknown)
        finally:
            server.stop()
        return
    wrong = "A" * (len(AZURITE_KEY) - 2) + "=="
    url = f"az://{bucket}/io.zarr"
    for env in (cloud.env(key=wrong), cloud.env(key=wrong, emulator=False)):
        refused(cubeforge.binary, ["cp", example, f"az://{bucket}/other.zarr"],
                expect=[f"az://{bucket}/other.zarr", "403"], keep=[example], env=env)
        out = tmp_path / "down.zarr"
        refused(cubeforge.binary, ["sync", url, out], expect=[url, "403"], dest=[out], env=env)


def test_no_credentials(cubeforge, cloud, tmp_path):
    """Nothing configured: the client asks the cloud's metadata service (here a closed port, as
    on a machine outside that cloud) and cubeforge says which variables to set."""
    closed = f"127.0.0.1:{free_port()}"
    env = {k: v for k, v in cloud.env().items()
           if not k.startswith(("AWS_", "GOOGLE_", "AZURE_", "AZURITE_", "STORAGE_EMULATOR_HOST"))}
    env.update(HOME=str(tmp_path), AWS_CONFIG_FILE=os.devnull, AWS_SHARED_CREDENTIALS_FILE=os.devnull,
               AWS_REGION="us-east-1", AWS_METADATA_ENDPOINT=f"http://{closed}",
               GCE_METADATA_HOST=closed, GCE_METADATA_IP=closed)
    url = f"{cloud.scheme}://some-bucket/cube.zarr"
    expect = {
        "s3": ["no AWS credentials found", "AWS_ACCESS_KEY_ID", "AWS_PROFILE", "--anon"],
        "gs": ["no Google Cloud credentials found", "GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"],
        "az": ["no Azure storage account configured", "AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_USE_EMULATOR"],
    }[cloud.scheme]
    refused(cubeforge.binary, ["--retries", "0", "ls", url], expect=[url, *expect], env=env)
    if cloud.scheme == "az":
        # An account without a key: the client asks for a managed identity.
        env.update(AZURE_STORAGE_ACCOUNT_NAME="devstoreaccount1", AZURE_STORAGE_ENDPOINT=f"http://{closed}/acct",
                   AZURE_MSI_ENDPOINT=f"http://{closed}/metadata/identity/oauth2/token")
        refused(cubeforge.binary, ["--retries", "0", "ls", url],
                expect=[url, "no Azure credentials found", "AZURE_STORAGE_ACCOUNT_KEY"], env=env)


RECIPE = Path(__file__).resolve().parents[2] / "recipes" / "tutorial.yaml"

# (name, destination below the bucket holding io.zarr, flags, fragments of the error)
BUCKET_DESTINATIONS = [
    ("overwrite the bucket root holding other data", "", ["--overwrite"], ["no zarr metadata", "io.zarr"]),
    ("output is the input", "io.zarr", ["--overwrite"], ["is the input"]),
    ("output inside the input", "io.zarr/cube.zarr", [], ["lies inside the input"]),
    ("output is the input's bucket", "", ["--resume"], ["contains the input"]),
]


@pytest.mark.parametrize("name,below,flags,expect", BUCKET_DESTINATIONS, ids=[c[0] for c in BUCKET_DESTINATIONS])
def test_bucket_destinations(cubeforge, cloud, bucket, example, name, below, flags, expect):
    """A build into a bucket never empties it or writes into its input; the bucket keeps every object."""
    url = f"{cloud.scheme}://{bucket}" + (f"/{below}" if below else "")
    # The bucket's io.zarr is the input, but where the bucket's other data is what is at stake.
    inp = f"{cloud.scheme}://{bucket}/io.zarr" if "input" in name else example
    before = cloud.keys(bucket, "")
    refused(cubeforge.binary, ["--retries", "0", "build", RECIPE, "--input", inp, "--output", url, *flags],
            expect=expect, env=cloud.env())
    assert cloud.keys(bucket, "") == before, "the bucket changed"
