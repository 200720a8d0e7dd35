"""Kafka connection settings: where the cluster is and how to prove who we are, in one object.

:class:`KafkaSettings` holds the bootstrap servers and the security settings, checks them, and
renders them for both clients eventml uses: kafka-python (:meth:`~KafkaSettings.for_kafka_python`,
the notebook-facing helpers) and librdkafka through confluent-kafka
(:meth:`~KafkaSettings.for_librdkafka`, the live updater). Its ``repr`` and ``str`` mask the
passwords, and no error eventml raises holds one.

One scheme
----------
Every setting has one name: the Python keyword of every eventml function that talks to Kafka
(``em.produce``, ``em.consumer.consume``, ``em.read_*``, ``em.create_topic`` and the other topic
functions, ``em.LiveUpdater``, ``em.grid.run_grid``, ``em.read_dead_letters``), the environment
variable (the keyword upper-cased, with the ``EVENTML_`` prefix) and the ``eventml`` option (dashes
for underscores). Passwords are never command-line arguments, which anyone can read in ``ps``:

=======================  ==============================  =====================================
keyword                  environment variable            ``eventml ...`` option
=======================  ==============================  =====================================
``bootstrap_servers``    ``EVENTML_BOOTSTRAP_SERVERS``   ``--bootstrap-servers``
``security_protocol``    ``EVENTML_SECURITY_PROTOCOL``   ``--security-protocol``
``sasl_mechanism``       ``EVENTML_SASL_MECHANISM``      ``--sasl-mechanism``
``sasl_username``        ``EVENTML_SASL_USERNAME``       ``--sasl-username``
``sasl_password``        ``EVENTML_SASL_PASSWORD``       ``--sasl-password-file``, else a prompt
``ssl_cafile``           ``EVENTML_SSL_CAFILE``          ``--ssl-cafile``
``ssl_certfile``         ``EVENTML_SSL_CERTFILE``        ``--ssl-certfile``
``ssl_keyfile``          ``EVENTML_SSL_KEYFILE``         ``--ssl-keyfile``
``ssl_password``         ``EVENTML_SSL_PASSWORD``        ``--ssl-password-file``
``ssl_check_hostname``   ``EVENTML_SSL_CHECK_HOSTNAME``  ``--no-ssl-check-hostname``
=======================  ==============================  =====================================

Each setting comes from its keyword if given (not None), else its environment variable if set
(not empty), else its default: ``127.0.0.1:9092``, ``PLAINTEXT``, ``PLAIN``, no credentials, no
files, hostname checked. A function can also take a whole ``kafka=KafkaSettings(...)``; keywords
given next to it override its fields. Notebook kernels started by eventml inherit the
environment, so ``EVENTML_*`` variables reach every notebook.

``security_protocol`` is one of :data:`PROTOCOLS`; SASL (``SASL_PLAINTEXT``, ``SASL_SSL``) needs a
username and a password and uses ``sasl_mechanism`` (one of :data:`MECHANISMS`); TLS (``SSL``,
``SASL_SSL``) trusts the CA certificates in ``ssl_cafile`` (PEM; the system's when not set) and
presents the client certificate ``ssl_certfile`` with its key ``ssl_keyfile`` (protected by
``ssl_password``) when the broker asks for one. Settings a protocol does not use are ignored,
but credentials or certificate files with no ``security_protocol`` at all are an error, not a
silent plaintext connection.

Examples
--------
>>> settings = KafkaSettings("broker:9093", security_protocol="SASL_SSL", sasl_mechanism="SCRAM-SHA-512",
...                          sasl_username="alice", sasl_password="s3cret", ssl_cafile="/etc/kafka/ca.pem")
>>> settings
KafkaSettings(bootstrap_servers='broker:9093', security_protocol='SASL_SSL', sasl_mechanism='SCRAM-SHA-512', sasl_username='alice', sasl_password='***', ssl_cafile='/etc/kafka/ca.pem')
>>> print(settings)
broker:9093 over SASL_SSL (SCRAM-SHA-512 as 'alice')
>>> settings.for_kafka_python()["sasl_plain_username"], settings.for_librdkafka()["ssl.ca.location"]
('alice', '/etc/kafka/ca.pem')
>>> KafkaSettings("broker:9093", security_protocol="SASL_SSL", sasl_username="alice")
Traceback (most recent call last):
...
eventml.errors.ConfigError: security_protocol SASL_SSL needs sasl_username and sasl_password; sasl_password is not set (give it as a keyword or set EVENTML_SASL_PASSWORD)
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterator, Mapping
from typing import Any

from eventml.errors import ConfigError
from eventml.kafka import logs

ENV_PREFIX = "EVENTML_"
#: The security protocols eventml accepts (Kafka's names).
PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
#: The SASL mechanisms eventml accepts: both clients implement them the same way.
MECHANISMS = ("PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512")
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"
MASK = "***"

_DEFAULTS: dict[str, Any] = {
    "bootstrap_servers": DEFAULT_BOOTSTRAP,
    "security_protocol": "PLAINTEXT",
    "sasl_mechanism": "PLAIN",
    "sasl_username": None,
    "sasl_password": None,
    "ssl_cafile": None,
    "ssl_certfile": None,
    "ssl_keyfile": None,
    "ssl_password": None,
    "ssl_check_hostname": True,
}
#: Every connection setting's name, in the order of the scheme's table.
NAMES = tuple(_DEFAULTS)
#: The environment variable of each setting.
ENV_NAMES = {name: ENV_PREFIX + name.upper() for name in NAMES}
ENV_BOOTSTRAP = ENV_NAMES["bootstrap_servers"]
SECRETS = ("sasl_password", "ssl_password")
_SASL = ("sasl_username", "sasl_password")
_TLS_FILES = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "ssl_password")
#: Environment variables with these prefixes must be known settings (a typo is an error, not ignored).
_CHECKED_ENV_PREFIXES = ("EVENTML_SASL_", "EVENTML_SSL_", "EVENTML_SECURITY_")
_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def bootstrap_servers(value: str | None = None) -> str:
    """The bootstrap address to use: ``value``, else ``$EVENTML_BOOTSTRAP_SERVERS``, else the default.

    Examples
    --------
    >>> bootstrap_servers("kafka:29092")
    'kafka:29092'
    """
    return value or os.environ.get(ENV_BOOTSTRAP) or DEFAULT_BOOTSTRAP


@dataclasses.dataclass(frozen=True, init=False, repr=False)
class KafkaSettings:
    """Where a Kafka cluster is and how to connect to it securely; see the module's scheme.

    Parameters
    ----------
    bootstrap_servers
        ``host:port[,host:port...]`` (or a list of them).
    security_protocol
        ``PLAINTEXT``, ``SSL``, ``SASL_PLAINTEXT`` or ``SASL_SSL`` (any case).
    sasl_mechanism
        ``PLAIN``, ``SCRAM-SHA-256`` or ``SCRAM-SHA-512`` (any case).
    sasl_username, sasl_password
        The SASL credentials; both are needed with a SASL protocol.
    ssl_cafile
        PEM file of the CA certificates that sign the brokers' certificates.
    ssl_certfile, ssl_keyfile, ssl_password
        The client's certificate (PEM), its private key (PEM, if not in the certificate file)
        and the key's password, for brokers that authenticate clients by certificate.
    ssl_check_hostname
        Check that a broker's certificate names the host connected to.
    environ
        Where unset settings are looked up; ``os.environ`` by default, ``{}`` for none.

    Raises
    ------
    ConfigError
        For an unknown setting, a protocol or mechanism not accepted (the message lists the
        accepted ones), SASL without credentials, or credentials or files without a protocol.
    """

    bootstrap_servers: str
    security_protocol: str
    sasl_mechanism: str
    sasl_username: str | None
    sasl_password: str | None
    ssl_cafile: str | None
    ssl_certfile: str | None
    ssl_keyfile: str | None
    ssl_password: str | None
    ssl_check_hostname: bool

    def __init__(self, bootstrap_servers: str | list[str] | None = None, *, security_protocol: str | None = None,
                 sasl_mechanism: str | None = None, sasl_username: str | None = None,
                 sasl_password: str | None = None, ssl_cafile: str | os.PathLike | None = None,
                 ssl_certfile: str | os.PathLike | None = None, ssl_keyfile: str | os.PathLike | None = None,
                 ssl_password: str | None = None, ssl_check_hostname: bool | None = None,
                 environ: Mapping[str, str] | None = None, **unknown: Any):
        if unknown:
            raise ConfigError(f"unknown Kafka connection setting(s) {', '.join(map(repr, sorted(unknown)))}; "
                              f"accepted settings: {', '.join(NAMES)}")
        given = {"bootstrap_servers": bootstrap_servers, "security_protocol": security_protocol,
                 "sasl_mechanism": sasl_mechanism, "sasl_username": sasl_username, "sasl_password": sasl_password,
                 "ssl_cafile": ssl_cafile, "ssl_certfile": ssl_certfile, "ssl_keyfile": ssl_keyfile,
                 "ssl_password": ssl_password, "ssl_check_hostname": ssl_check_hostname}
        env = os.environ if environ is None else environ
        _check_env_names(env)
        values, origins = {}, {}
        for name in NAMES:
            if given[name] is not None:
                values[name], origins[name] = given[name], name
            elif env.get(ENV_NAMES[name]):
                values[name], origins[name] = env[ENV_NAMES[name]], ENV_NAMES[name]
            else:
                values[name], origins[name] = _DEFAULTS[name], None
        for name, value in _validated(values, origins).items():
            object.__setattr__(self, name, value)
        logs.register_secrets(self.sasl_password, self.ssl_password)

    # ------------------------------------------------------------------ building

    @classmethod
    def resolve(cls, kafka: KafkaSettings | None = None, /, **connection: Any) -> KafkaSettings:
        """The settings of a function given ``kafka=`` and connection keywords (None = not given).

        Examples
        --------
        >>> base = KafkaSettings("a:9092", environ={})
        >>> KafkaSettings.resolve(base, bootstrap_servers="b:9092").bootstrap_servers
        'b:9092'
        >>> KafkaSettings.resolve(base, bootstrap_servers=None) is base
        True
        """
        if kafka is None:
            return cls(**connection)
        if not isinstance(kafka, KafkaSettings):
            raise ConfigError(f"kafka must be a KafkaSettings, got {type(kafka).__name__}; "
                              "e.g. kafka=em.KafkaSettings(bootstrap_servers=...)")
        given = {name: value for name, value in connection.items() if value is not None}
        return kafka.replace(**given) if given else kafka

    def replace(self, **changes: Any) -> KafkaSettings:
        """A copy with ``changes``; the environment is not read again.

        >>> KafkaSettings("a:9092", environ={}).replace(security_protocol="ssl").security_protocol
        'SSL'
        """
        kept = {name: value for name in NAMES if (value := getattr(self, name)) != _DEFAULTS[name]}
        return KafkaSettings(**{**kept, **changes}, environ={})

    # ------------------------------------------------------------------ what it means

    @property
    def uses_sasl(self) -> bool:
        """True for ``SASL_PLAINTEXT`` and ``SASL_SSL``."""
        return self.security_protocol.startswith("SASL_")

    @property
    def uses_tls(self) -> bool:
        """True for ``SSL`` and ``SASL_SSL``."""
        return self.security_protocol in ("SSL", "SASL_SSL")

    @property
    def servers(self) -> list[tuple[str, int]]:
        """The bootstrap servers as ``(host, port)`` pairs (port 9092 when none is written).

        >>> KafkaSettings("a:1, [::1]:2,b", environ={}).servers
        [('a', 1), ('::1', 2), ('b', 9092)]
        """
        pairs = []
        for server in self.bootstrap_servers.split(","):
            host, sep, port = server.strip().rpartition(":")
            if not sep or "]" in port:
                host, port = server.strip(), "9092"
            pairs.append((host.strip("[]"), int(port)))
        return pairs

    # ------------------------------------------------------------------ the two dialects

    def for_kafka_python(self) -> dict[str, Any]:
        """The settings under kafka-python's names (``KafkaProducer(**settings.for_kafka_python())``).

        >>> KafkaSettings("a:9092", environ={}).for_kafka_python()
        {'bootstrap_servers': 'a:9092', 'security_protocol': 'PLAINTEXT'}
        """
        config: dict[str, Any] = {"bootstrap_servers": self.bootstrap_servers,
                                  "security_protocol": self.security_protocol}
        if self.uses_sasl:
            config.update(sasl_mechanism=self.sasl_mechanism, sasl_plain_username=self.sasl_username,
                          sasl_plain_password=self.sasl_password)
        if self.uses_tls:
            config["ssl_check_hostname"] = self.ssl_check_hostname
            config.update({name: getattr(self, name) for name in _TLS_FILES if getattr(self, name) is not None})
        return config

    def for_librdkafka(self) -> dict[str, Any]:
        """The settings under librdkafka's names (``confluent_kafka.Producer(settings.for_librdkafka())``).

        Without ``ssl_cafile``, librdkafka is told to find the system's CA certificates
        (``"probe"``), as kafka-python does by itself.

        >>> KafkaSettings("a:9092", environ={}).for_librdkafka()
        {'bootstrap.servers': 'a:9092', 'security.protocol': 'PLAINTEXT'}
        """
        config: dict[str, Any] = {"bootstrap.servers": self.bootstrap_servers,
                                  "security.protocol": self.security_protocol}
        if self.uses_sasl:
            config.update({"sasl.mechanism": self.sasl_mechanism, "sasl.username": self.sasl_username,
                           "sasl.password": self.sasl_password})
        if self.uses_tls:
            config["ssl.ca.location"] = self.ssl_cafile or "probe"
            rdkafka_names = {"ssl_certfile": "ssl.certificate.location", "ssl_keyfile": "ssl.key.location",
                             "ssl_password": "ssl.key.password"}
            config.update({rdkafka_names[name]: getattr(self, name) for name in rdkafka_names
                           if getattr(self, name) is not None})
            config["ssl.endpoint.identification.algorithm"] = "https" if self.ssl_check_hostname else "none"
        return config

    def to_env(self) -> dict[str, str]:
        """Every setting as its environment variable (unset ones as ``""``), e.g. for a child
        process; :class:`KafkaSettings` built from it equals this one. It holds the passwords.

        >>> env = KafkaSettings("a:9092", environ={}).to_env()
        >>> env["EVENTML_BOOTSTRAP_SERVERS"], env["EVENTML_SASL_USERNAME"], env["EVENTML_SSL_CHECK_HOSTNAME"]
        ('a:9092', '', 'true')
        >>> KafkaSettings(environ=env) == KafkaSettings("a:9092", environ={})
        True
        """
        def text(value: Any) -> str:
            if isinstance(value, bool):
                return "true" if value else "false"
            return "" if value is None else str(value)

        return {ENV_NAMES[name]: text(getattr(self, name)) for name in NAMES}

    # ------------------------------------------------------------------ never showing secrets

    def __repr__(self) -> str:
        shown = []
        for name in NAMES:
            value = getattr(self, name)
            if name in ("bootstrap_servers", "security_protocol") or (value != _DEFAULTS[name] and value is not None):
                shown.append(f"{name}={MASK!r}" if name in SECRETS else f"{name}={value!r}")
        return f"KafkaSettings({', '.join(shown)})"

    def __str__(self) -> str:
        text = f"{self.bootstrap_servers} over {self.security_protocol}"
        if self.uses_sasl:
            text += f" ({self.sasl_mechanism} as {self.sasl_username!r})"
        return text

    def __reduce__(self):
        raise TypeError("KafkaSettings are not pickled: they may hold passwords")

    def __copy__(self) -> KafkaSettings:
        return self  # immutable

    def __deepcopy__(self, memo: dict) -> KafkaSettings:
        return self


def split_settings(kafka: KafkaSettings | None, config: dict[str, Any]) -> tuple[KafkaSettings, dict[str, Any]]:
    """An entry point's connection settings (``kafka`` and the connection keywords in ``config``)
    and the rest of ``config`` (a client's tuning settings).

    >>> settings, tuning = split_settings(None, {"bootstrap_servers": "a:1", "linger_ms": 5})
    >>> settings.bootstrap_servers, tuning
    ('a:1', {'linger_ms': 5})
    """
    connection = {name: value for name, value in config.items() if name in ENV_NAMES}
    rest = {name: value for name, value in config.items() if name not in ENV_NAMES}
    return KafkaSettings.resolve(kafka, **connection), rest


@contextlib.contextmanager
def environment(settings: KafkaSettings) -> Iterator[None]:
    """Within the block, ``os.environ`` holds ``settings`` (:meth:`KafkaSettings.to_env`): child
    processes started in it, such as notebook kernels, connect the same way."""
    saved = {name: os.environ.get(name) for name in ENV_NAMES.values()}
    os.environ.update(settings.to_env())
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _check_env_names(env: Mapping[str, str]) -> None:
    known = set(ENV_NAMES.values())
    unknown = sorted(name for name in env if name.startswith(_CHECKED_ENV_PREFIXES) and name not in known)
    if unknown:
        raise ConfigError(f"unknown environment variable(s) {', '.join(unknown)}; eventml's Kafka connection "
                          f"variables are {', '.join(ENV_NAMES.values())}")


def _validated(values: dict[str, Any], origins: dict[str, str | None]) -> dict[str, Any]:
    """The values checked and normalized; ``origins`` says where each came from (for the messages)."""
    def source(name: str) -> str:
        origin = origins[name]
        return f" (from {origin})" if origin and origin.startswith(ENV_PREFIX) else ""

    def choice(name: str, accepted: tuple[str, ...]) -> str:
        value = values[name]
        if not isinstance(value, str) or value.strip().upper() not in accepted:
            raise ConfigError(f"{name} {value!r}{source(name)} is not accepted; accepted values: {', '.join(accepted)}")
        return value.strip().upper()

    out = dict(values)
    servers = values["bootstrap_servers"]
    if isinstance(servers, (list, tuple)):
        servers = ",".join(map(str, servers))
    if not isinstance(servers, str) or not all(part.strip() for part in servers.split(",")):
        raise ConfigError(f"bootstrap_servers{source('bootstrap_servers')} must be host:port[,host:port...], "
                          f"got {values['bootstrap_servers']!r}")
    for part in servers.split(","):
        host, sep, port = part.strip().rpartition(":")
        if sep and "]" not in port and not (host and port.isdigit()):
            raise ConfigError(f"bootstrap server {part.strip()!r}{source('bootstrap_servers')} is not host:port")
    out["bootstrap_servers"] = ",".join(part.strip() for part in servers.split(","))
    out["security_protocol"] = choice("security_protocol", PROTOCOLS)
    out["sasl_mechanism"] = choice("sasl_mechanism", MECHANISMS)
    for name in ("sasl_username", *SECRETS, "ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        value = values[name]
        if isinstance(value, os.PathLike) and name not in SECRETS:
            value = os.fspath(value)
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {type(value).__name__}")
        out[name] = value or None
    check = values["ssl_check_hostname"]
    if isinstance(check, str) and check.strip().lower() in _TRUE + _FALSE:
        check = check.strip().lower() in _TRUE
    if not isinstance(check, bool):
        raise ConfigError(f"ssl_check_hostname{source('ssl_check_hostname')} must be true or false, got {check!r}")
    out["ssl_check_hostname"] = check

    protocol = out["security_protocol"]
    if protocol.startswith("SASL_"):
        missing = [name for name in _SASL if out[name] is None]
        if missing:
            raise ConfigError(f"security_protocol {protocol} needs sasl_username and sasl_password; "
                              f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set (give "
                              f"{'it' if len(missing) == 1 else 'them'} as a keyword or set "
                              f"{' and '.join(ENV_NAMES[name] for name in missing)})")
    elif origins["security_protocol"] is None:
        stray = [name for name in _SASL if out[name] is not None]
        if stray:
            raise ConfigError(f"{stray[0]}{source(stray[0])} is set but security_protocol is not, so no credentials "
                              "would be sent: set security_protocol to SASL_SSL or SASL_PLAINTEXT "
                              f"(or {ENV_NAMES['security_protocol']})")
    if protocol not in ("SSL", "SASL_SSL") and origins["security_protocol"] is None:
        stray = [name for name in _TLS_FILES if out[name] is not None]
        if stray:
            raise ConfigError(f"{stray[0]}{source(stray[0])} is set but security_protocol is not, so TLS would not "
                              f"be used: set security_protocol to SSL or SASL_SSL (or {ENV_NAMES['security_protocol']})")
    if out["ssl_keyfile"] and not out["ssl_certfile"]:
        raise ConfigError("ssl_keyfile is set without ssl_certfile: set ssl_certfile to the client certificate "
                          "the key belongs to")
    if out["ssl_password"] and not out["ssl_certfile"]:
        raise ConfigError("ssl_password is set without ssl_certfile: it unlocks the client certificate's key, "
                          "so set ssl_certfile (and ssl_keyfile if the key is in its own file)")
    return out
