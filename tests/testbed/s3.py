"""A real S3-compatible endpoint for tests and benchmarks: moto in server mode (`moto_server`) on
127.0.0.1, a free port, a bucket per use. boto3 talks to it over HTTP exactly as to a real bucket."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field

# moto accepts any credentials; these are only there so boto3 signs its requests.
CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "ccp-test",
    "AWS_SECRET_ACCESS_KEY": "ccp-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    endpoint: str
    process: subprocess.Popen
    _client: object = field(default=None, init=False, repr=False)

    def client(self):
        """One client for the server's life: boto3 clients are thread-safe, and making one takes tens of ms."""
        if self._client is None:
            import boto3

            self._client = boto3.session.Session(
                aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
                aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                region_name=CREDENTIALS["AWS_DEFAULT_REGION"],
            ).client("s3", endpoint_url=self.endpoint)
        return self._client

    def new_bucket(self) -> str:
        name = f"ccp-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        found = []
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found += [item["Key"] for item in page.get("Contents", [])]
        return found

    def uploads(self, bucket: str, prefix: str = "") -> list[str]:
        return [
            item["Key"]
            for item in self.client().list_multipart_uploads(Bucket=bucket, Prefix=prefix).get("Uploads", [])
        ]


@contextmanager
def moto_server():
    """Start `moto_server` on a free loopback port; stop it afterwards."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        # moto spools every object over ~5 MiB to a temporary file and reads it back to complete an
        # upload; kept in memory, the test endpoint takes less of the CPU it shares with node and worker.
        env={"MOTO_S3_DEFAULT_KEY_BUFFER_SIZE": str(1 << 30), **os.environ, **CREDENTIALS},
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto_server did not start (is moto[server] installed?)") from None
            time.sleep(0.1)
    try:
        yield S3Server(endpoint=f"http://127.0.0.1:{port}", process=process)
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
