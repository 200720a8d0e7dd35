"""Fail fast, in one sentence: reach a broker, trust it, and be trusted by it.

Both clients retry quietly when a connection fails: kafka-python for 30 s before a
``KafkaTimeoutError`` from deep inside, librdkafka until the call's timeout, with the reason
only in a log line. :func:`check_connection` runs before eventml makes a client and says what
is wrong in one sentence:

1. **Reach**: a TCP connection to one of the bootstrap servers, else
   :class:`~eventml.errors.KafkaUnavailableError` ("no Kafka broker answered at ...").
2. **Trust** (``SSL``, ``SASL_SSL``): a TLS handshake with the settings' CA file, client
   certificate and hostname check, else :class:`~eventml.errors.KafkaAuthError` saying whether
   the broker's certificate is not trusted, names another host, has expired, or the broker wants
   a client certificate, or that the listener does not speak TLS.
3. **Be trusted** (``SASL_*``): a SASL login with a short-lived librdkafka client, else
   :class:`~eventml.errors.KafkaAuthError` saying that the broker refused the user's
   credentials or does not enable the mechanism. Both clients implement the accepted mechanisms,
   so one login stands for both.

Steps 2 and 3 are remembered for a minute per settings, so the several clients a read or a
topic command makes do not repeat them. Messages name settings and users, never passwords.

Examples
--------
>>> from eventml.kafka.settings import KafkaSettings
>>> try:
...     check_connection(KafkaSettings("127.0.0.1:1", environ={}))
... except KafkaUnavailableError as error:
...     print(str(error).split(";")[0])
no Kafka broker answered at 127.0.0.1:1
"""

from __future__ import annotations

import logging
import re
import socket
import ssl
import time

from eventml.errors import ConfigError, KafkaAuthError, KafkaUnavailableError
from eventml.kafka.settings import ENV_BOOTSTRAP, ENV_NAMES, KafkaSettings

log = logging.getLogger(__name__)

#: How long a successful TLS and SASL check is trusted for the same settings.
VERIFIED_FOR_S = 60.0
_verified: dict[KafkaSettings, float] = {}


def no_broker_error(settings: KafkaSettings) -> KafkaUnavailableError:
    """The one-sentence error for "nothing answers at the bootstrap address"."""
    return KafkaUnavailableError(
        f"no Kafka broker answered at {settings.bootstrap_servers}; start one with `eventml kafka start` "
        f"(or `docker compose up -d`), or set {ENV_BOOTSTRAP} to your cluster."
    )


def silent_broker_error(settings: KafkaSettings, waited_s: float) -> KafkaUnavailableError:
    """The error for a broker that accepts connections but never answers the client."""
    return KafkaUnavailableError(
        f"Kafka at {settings.bootstrap_servers} accepted connections but did not answer a "
        f"{settings.security_protocol} client within {waited_s:g} s; if its listener uses another security "
        f"protocol, set security_protocol ({ENV_NAMES['security_protocol']}) to it")


def check_connection(settings: KafkaSettings, timeout_s: float = 3.0) -> None:
    """Reach a bootstrap server (TCP), trust it (TLS) and log in (SASL), or raise one sentence.

    Raises
    ------
    KafkaUnavailableError
        If no bootstrap server accepts a TCP connection.
    KafkaAuthError
        If the TLS handshake or the SASL login fails (a subclass of the above).
    ConfigError
        If a certificate or key file cannot be read.
    """
    secure = settings.uses_tls or settings.uses_sasl
    verified = secure and time.monotonic() - _verified.get(settings, -VERIFIED_FOR_S) < VERIFIED_FOR_S
    host, port, sock = _reach(settings, timeout_s)
    try:
        if settings.uses_tls and not verified:
            _check_tls(settings, host, port, sock, timeout_s)
    finally:
        sock.close()
    if settings.uses_sasl and not verified:
        _check_login(settings, max(timeout_s, 10.0))
    if secure and not verified:
        _verified[settings] = time.monotonic()


def forget(settings: KafkaSettings) -> None:
    """Check ``settings`` in full next time (e.g. after a client failed with them)."""
    _verified.pop(settings, None)


def _reach(settings: KafkaSettings, timeout_s: float) -> tuple[str, int, socket.socket]:
    for host, port in settings.servers:
        try:
            return host, port, socket.create_connection((host or "localhost", port), timeout=timeout_s)
        except (OSError, ValueError):
            continue
    raise no_broker_error(settings)


# ---------------------------------------------------------------------- TLS


def tls_context(settings: KafkaSettings) -> ssl.SSLContext:
    """The client TLS context kafka-python builds from these settings; :class:`ConfigError` if a
    file cannot be used."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.check_hostname = settings.ssl_check_hostname
    try:
        if settings.ssl_cafile:
            context.load_verify_locations(settings.ssl_cafile)
        else:
            context.load_default_certs()
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"ssl_cafile {settings.ssl_cafile!r} cannot be used as CA certificates (PEM): "
                          f"{_reason(exc)}") from None
    if settings.ssl_certfile:
        try:
            context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile, settings.ssl_password)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(f"the client certificate ssl_certfile {settings.ssl_certfile!r} (key: "
                              f"{settings.ssl_keyfile or 'in the same file'}) cannot be loaded: {_reason(exc)}; "
                              "check the files and ssl_password") from None
    return context


def _check_tls(settings: KafkaSettings, host: str, port: int, sock: socket.socket, timeout_s: float) -> None:
    where = f"{host}:{port}"
    context = tls_context(settings)
    try:
        tls = context.wrap_socket(sock, server_hostname=host or "localhost")
    except ssl.SSLCertVerificationError as exc:
        raise _certificate_error(settings, where, exc) from None
    except (ssl.SSLEOFError, ConnectionError) as exc:
        raise KafkaAuthError("protocol", (
            f"Kafka at {where} closed the connection during the TLS handshake ({_reason(exc)}): its listener "
            f"may not use TLS, so check security_protocol ({settings.security_protocol}), or it may require "
            "a client certificate (ssl_certfile)")) from None
    except ssl.SSLError as exc:
        raise _handshake_error(settings, where, exc) from None
    except TimeoutError:
        raise KafkaUnavailableError(f"Kafka at {where} accepted a connection but did not finish a TLS handshake "
                                    f"within {timeout_s:g} s") from None
    try:
        # with TLS 1.3 a broker that requires a client certificate says so after the handshake
        tls.settimeout(0.05)
        tls.recv(1)
    except TimeoutError:
        pass
    except ssl.SSLError as exc:
        raise _handshake_error(settings, where, exc) from None
    except OSError:
        pass
    finally:
        tls.close()


def _certificate_error(settings: KafkaSettings, where: str, exc: ssl.SSLCertVerificationError) -> KafkaAuthError:
    detail = (exc.verify_message or _reason(exc)).rstrip(".")
    if "mismatch" in detail.lower():
        return KafkaAuthError("hostname", (
            f"the TLS certificate of Kafka at {where} is not valid for the name {where.rpartition(':')[0]!r} "
            f"({detail}): connect by a name the certificate lists, or set ssl_check_hostname=False "
            f"({ENV_NAMES['ssl_check_hostname']}=false) if you trust the network"))
    if "expired" in detail.lower():
        return KafkaAuthError("untrusted_certificate", f"the TLS certificate of Kafka at {where} has expired ({detail})")
    trusted = f"the CA certificates in ssl_cafile {settings.ssl_cafile!r}" if settings.ssl_cafile else \
        "the system's CA certificates (ssl_cafile is not set)"
    return KafkaAuthError("untrusted_certificate", (
        f"the TLS certificate of Kafka at {where} is not trusted by {trusted} ({detail}): set ssl_cafile "
        f"({ENV_NAMES['ssl_cafile']}) to the PEM file of the CA that signed the broker's certificate"))


def _handshake_error(settings: KafkaSettings, where: str, exc: ssl.SSLError) -> KafkaAuthError:
    reason = (exc.reason or "").upper()
    if "CERTIFICATE_REQUIRED" in reason or ("BAD_CERTIFICATE" in reason and not settings.ssl_certfile):
        return KafkaAuthError("client_certificate", (
            f"Kafka at {where} requires a client certificate: set ssl_certfile and ssl_keyfile "
            f"({ENV_NAMES['ssl_certfile']}, {ENV_NAMES['ssl_keyfile']})"))
    if "CERTIFICATE" in reason or "UNKNOWN_CA" in reason:
        return KafkaAuthError("client_certificate", (
            f"Kafka at {where} did not accept the client certificate ssl_certfile {settings.ssl_certfile!r} "
            f"({_reason(exc)}): it must be signed by a CA the broker trusts"))
    if "WRONG_VERSION_NUMBER" in reason or "RECORD_LAYER" in reason or "PACKET_LENGTH" in reason:
        return KafkaAuthError("protocol", (
            f"Kafka at {where} does not speak TLS ({_reason(exc)}): its listener may be PLAINTEXT or "
            f"SASL_PLAINTEXT, so check security_protocol ({settings.security_protocol})"))
    return KafkaAuthError("protocol", f"the TLS handshake with Kafka at {where} failed: {_reason(exc)}")


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return exc.reason.replace("_", " ").lower()
    return getattr(exc, "strerror", None) or str(exc) or type(exc).__name__


# ---------------------------------------------------------------------- SASL


class _QuietLogger:
    """librdkafka's log lines from a login check, at DEBUG: a refused login is reported as an error."""

    def log(self, level: int, message: str, *args) -> None:
        log.debug(message, *args)


def _check_login(settings: KafkaSettings, timeout_s: float) -> None:
    """Log in with a throwaway librdkafka producer; its error callback reports a refused login."""
    from confluent_kafka import KafkaError, KafkaException, Producer

    errors: list = []
    probe = Producer({**settings.for_librdkafka(), "error_cb": errors.append, "logger": _QuietLogger(),
                      "reconnect.backoff.max.ms": 1000})
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                probe.list_topics(timeout=0.25)
                return
            except KafkaException:
                pass
            probe.poll(0)  # serves the error callback
            for error in errors:
                if error.code() in (KafkaError._AUTHENTICATION, KafkaError._SSL):
                    raise login_error(settings, error.str(), tls=error.code() == KafkaError._SSL) from None
            if time.monotonic() >= deadline:
                raise silent_broker_error(settings, timeout_s)
    finally:
        del probe


_AFTER = re.compile(r"\s*\(after \d+ms in state \w+\)\s*$")


def login_error(settings: KafkaSettings, detail: str, tls: bool = False) -> KafkaAuthError:
    """The one sentence for a failed SASL login (or, with ``tls``, TLS handshake) a client reported as ``detail``."""
    detail = _AFTER.sub("", detail).strip()
    detail = detail.split("SASL authentication error: ", 1)[-1].split(": SSL handshake failed: ", 1)[-1]
    if "mechanism" in detail.lower() and ("unsupported" in detail.lower() or "not support" in detail.lower()):
        return KafkaAuthError("mechanism", (
            f"Kafka at {settings.bootstrap_servers} does not enable the SASL mechanism {settings.sasl_mechanism} "
            f"({detail}): set sasl_mechanism ({ENV_NAMES['sasl_mechanism']}) to one it enables"))
    if tls:
        return KafkaAuthError("untrusted_certificate", (
            f"the TLS handshake with Kafka at {settings.bootstrap_servers} failed ({detail}): check ssl_cafile "
            f"({ENV_NAMES['ssl_cafile']})"))
    return KafkaAuthError("credentials", (
        f"Kafka at {settings.bootstrap_servers} refused the {settings.sasl_mechanism} login of user "
        f"{settings.sasl_username!r} ({detail}): check sasl_username and sasl_password "
        f"({ENV_NAMES['sasl_username']}, {ENV_NAMES['sasl_password']})"))
