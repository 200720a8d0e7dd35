"""The TLS part of the connection check, against a small TLS server (no broker): an untrusted
certificate, a certificate for another name, a listener that is not TLS, and a broker that wants a
client certificate are each one sentence that says which, within a second."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
import time

import pytest

import eventml as em
from eventml.errors import ConfigError, KafkaAuthError
from eventml.kafka import rdkafka
from eventml.kafka.connection import check_connection
from eventml.kafka.settings import KafkaSettings

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")


def _openssl(*args: str, cwd) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A CA, a server certificate for "localhost" and a client certificate, signed by the CA."""
    d = tmp_path_factory.mktemp("pki")
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
             "-subj", "/CN=eventml test CA", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    for name, ext in (("server", "subjectAltName=DNS:localhost"), ("client", "extendedKeyUsage=clientAuth")):
        _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr",
                 "-subj", f"/CN={name}", cwd=d)
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial",
                 "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d)
    return d


class _Server:
    """Accepts connections on 127.0.0.1 and, with a context, does the TLS handshake on each."""

    def __init__(self, context: ssl.SSLContext | None):
        self.context = context
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen()
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(5)
            if self.context is None:
                conn.recv(1024)  # a plaintext listener: reads the ClientHello, then hangs up
            else:
                with self.context.wrap_socket(conn, server_side=True) as tls:
                    tls.recv(1024)
        except (OSError, ssl.SSLError):
            pass
        finally:
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def tls_server(pki):
    servers = []

    def start(require_client_certificate: bool = False, tls: bool = True) -> _Server:
        context = None
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(pki / "server.pem", pki / "server.key")
            if require_client_certificate:
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(pki / "ca.pem")
        servers.append(_Server(context))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def _settings(host: str, port: int, **security) -> KafkaSettings:
    return KafkaSettings(f"{host}:{port}", security_protocol="SSL", environ={}, **security)


def _fails(settings: KafkaSettings, reason: str) -> str:
    started = time.monotonic()
    with pytest.raises(KafkaAuthError) as info:
        check_connection(settings)
    assert info.value.reason == reason and time.monotonic() - started < 2
    return str(info.value)


def test_a_certificate_the_ca_file_trusts_passes(tls_server, pki):
    server = tls_server()
    check_connection(_settings("localhost", server.port, ssl_cafile=str(pki / "ca.pem")))


def test_an_untrusted_certificate_is_one_sentence_naming_ssl_cafile(tls_server, pki):
    server = tls_server()
    message = _fails(_settings("localhost", server.port), "untrusted_certificate")
    assert "is not trusted by the system's CA certificates" in message and "EVENTML_SSL_CAFILE" in message
    other_ca = pki / "client.pem"  # a certificate file that is not the broker's CA
    message = _fails(_settings("localhost", server.port, ssl_cafile=str(other_ca)), "untrusted_certificate")
    assert f"ssl_cafile {str(other_ca)!r}" in message


def test_a_certificate_for_another_name_says_so_and_how_to_skip_the_check(tls_server, pki):
    server = tls_server()
    message = _fails(_settings("127.0.0.1", server.port, ssl_cafile=str(pki / "ca.pem")), "hostname")
    assert "not valid for the name '127.0.0.1'" in message and "ssl_check_hostname=False" in message
    check_connection(_settings("127.0.0.1", server.port, ssl_cafile=str(pki / "ca.pem"), ssl_check_hostname=False))


def test_a_listener_that_does_not_speak_tls_names_security_protocol(tls_server, pki):
    server = tls_server(tls=False)
    message = _fails(_settings("localhost", server.port, ssl_cafile=str(pki / "ca.pem")), "protocol")
    assert "security_protocol" in message


def test_a_broker_that_wants_a_client_certificate_says_so(tls_server, pki):
    server = tls_server(require_client_certificate=True)
    settings = _settings("localhost", server.port, ssl_cafile=str(pki / "ca.pem"))
    message = _fails(settings, "client_certificate")
    assert "ssl_certfile" in message
    check_connection(settings.replace(ssl_certfile=str(pki / "client.pem"), ssl_keyfile=str(pki / "client.key")))


def test_an_unreadable_ca_file_is_a_config_error(tls_server, tmp_path):
    server = tls_server()
    with pytest.raises(ConfigError, match="cannot be used as CA certificates"):
        check_connection(_settings("localhost", server.port, ssl_cafile=str(tmp_path / "missing.pem")))


def test_both_clients_fail_with_the_same_sentence_before_connecting(tls_server):
    server = tls_server()
    settings = _settings("localhost", server.port)
    with pytest.raises(KafkaAuthError, match="is not trusted"):
        em.produce([], "t", kafka=settings, progress=False)
    with pytest.raises(KafkaAuthError, match="is not trusted"):
        rdkafka.producer(settings, {"linger.ms": 5})
