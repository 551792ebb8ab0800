"""The cluster's Redis over TLS and with a password, as ``[cluster] redis`` names it: a real ``redis-server``
with a certificate from a test CA (``trustme``), trusted through ``$SSL_CERT_FILE``."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
import trio
import trustme

from testsupport.daemon import free_port
from testsupport.redis_server import _answers
from videoroomd.cluster.redis_client import open_redis

PASSWORD = "correct-horse-battery"


@pytest.fixture
def tls_redis(tmp_path, monkeypatch):
    """A TLS-only Redis needing PASSWORD, its certificate for "localhost"; yields its port."""
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    ca = trustme.CA()
    cert = ca.issue_cert("localhost")
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
    port, plain = free_port(), free_port()
    process = subprocess.Popen(
        ["redis-server", "--save", "", "--appendonly", "no", "--bind", "127.0.0.1", "--port", "0",
         "--tls-port", str(port), "--tls-cert-file", str(tmp_path / "cert.pem"),
         "--tls-key-file", str(tmp_path / "key.pem"), "--tls-ca-cert-file", str(tmp_path / "ca.pem"),
         "--tls-auth-clients", "no", "--requirepass", PASSWORD, "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        while subprocess.run(["redis-cli", "--tls", "--cacert", str(tmp_path / "ca.pem"), "-h", "localhost", "-p",
                              str(port), "--no-auth-warning", "-a", PASSWORD, "PING"],
                             capture_output=True, text=True).stdout.strip() != "PONG":
            assert process.poll() is None and time.monotonic() < deadline, "redis-server with TLS did not start"
            time.sleep(0.1)
        assert not _answers(plain)
        yield port
    finally:
        process.terminate()
        process.wait(timeout=10)


async def test_a_rediss_url_with_a_password_reaches_redis_over_verified_tls(tls_redis):
    async with open_redis(f"rediss://:{PASSWORD}@localhost:{tls_redis}/0") as client:
        with trio.fail_after(5):
            await client.set("k", "v")
            assert await client.get("k") == b"v"


async def test_a_wrong_password_or_a_name_the_certificate_is_not_for_is_refused(tls_redis):
    for url in (f"rediss://:wrong@localhost:{tls_redis}/0",      # the password
                f"rediss://:{PASSWORD}@127.0.0.1:{tls_redis}/0"):  # the certificate names localhost only
        async with open_redis(url) as client:
            with trio.fail_after(5):
                with pytest.raises(Exception) as refused:
                    await client.get("k")
        assert not isinstance(refused.value, trio.TooSlowError), url
