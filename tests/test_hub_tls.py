"""`nsp-edge hub --tls-cert --tls-key` as a real subprocess: HTTPS that a real httpx client
verifies against a throwaway self-signed certificate (made here with `cryptography`), a signed
batch accepted over it, and the start refused (exit 2, the fix named) for a key others can read
or a certificate and key that do not belong together."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from edge_server.hub.testing import sample_status
from edge_server.uplink.protocol import encode_batch, iso, sign_headers
from tests.conftest import ROOT, free_port


def make_pair(folder: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub.test")])
    now = datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / f"{name}.crt", folder / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def hub_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_server.cli", "hub", *args]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(hub_cli(*args), cwd=ROOT, capture_output=True, text=True, timeout=60)


def test_hub_serves_https_that_a_client_verifies(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    cert, key = make_pair(tmp_path, "hub")
    site_key = run("add-site", "nsp-a", "--data", str(data)).stdout.split()[1].encode()
    token = run("add-user", "olga", "--role", "operator", "--data", str(data)).stdout.split()[-1]
    port = free_port()
    proc = subprocess.Popen(
        hub_cli("--data", str(data), "--listen", f"127.0.0.1:{port}",
                "--tls-cert", str(cert), "--tls-key", str(key)),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert f"board https://127.0.0.1:{port}/" in line, line
        trust = ssl.create_default_context(cafile=str(cert))
        with httpx.Client(base_url=f"https://127.0.0.1:{port}", verify=trust, timeout=10) as c:
            deadline = time.monotonic() + 15  # the line is printed before uvicorn accepts
            while True:
                assert proc.poll() is None, proc.stderr.read()  # type: ignore[union-attr]
                try:
                    assert c.get("/").status_code == 200
                    break
                except httpx.ConnectError:
                    assert time.monotonic() < deadline
                    time.sleep(0.05)
            now = datetime.now(UTC)
            messages = [{"id": str(uuid.uuid4()), "kind": "status", "at": iso(now),
                         "body": sample_status(at=now)}]
            body = encode_batch("nsp-a", str(uuid.uuid4()), now, messages)
            r = c.post("/api/v1/ingest", content=body,
                       headers=sign_headers("nsp-a", site_key, body, int(now.timestamp())))
            assert r.status_code == 200, r.text
            sites = c.get("/api/v1/sites", headers={"Authorization": f"Bearer {token}"}).json()
            assert sites["sites"][0]["readiness"] == "READY"
        # A client that does not trust this certificate is refused by TLS itself.
        with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            httpx.get(f"https://127.0.0.1:{port}/", timeout=10)
        # Plain HTTP to the TLS port gets no board.
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def test_start_is_refused_with_the_fix_for_bad_tls_files(tmp_path: Path) -> None:
    data = str(tmp_path / "hub")
    cert, key = make_pair(tmp_path, "hub")
    other_cert, _other_key = make_pair(tmp_path, "other")
    listen = f"127.0.0.1:{free_port()}"

    key.chmod(0o644)
    r = run("--data", data, "--listen", listen, "--tls-cert", str(cert), "--tls-key", str(key))
    assert r.returncode == 2 and f"chmod 600 {key}" in r.stderr and "Traceback" not in r.stderr
    key.chmod(0o600)

    r = run("--data", data, "--listen", listen, "--tls-cert", str(other_cert),
            "--tls-key", str(key))
    assert r.returncode == 2 and "do not load together" in r.stderr, r.stderr
    assert "openssl x509 -noout -pubkey" in r.stderr

    garbage = tmp_path / "garbage.crt"
    garbage.write_text("not a certificate\n")
    r = run("--data", data, "--listen", listen, "--tls-cert", str(garbage), "--tls-key", str(key))
    assert r.returncode == 2 and "do not load together" in r.stderr, r.stderr

    r = run("--data", data, "--listen", listen, "--tls-cert", str(cert))
    assert r.returncode == 2 and "go together" in r.stderr

    r = run("--data", data, "--listen", listen, "--tls-cert", str(tmp_path / "missing.crt"),
            "--tls-key", str(key))
    assert r.returncode == 2 and "no readable file" in r.stderr
