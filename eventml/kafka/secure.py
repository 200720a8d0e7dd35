"""The secured local broker: SASL/SCRAM-SHA-512 over TLS, with certificates made by the JDK's keytool.

``LocalKafka(secure=True)`` (``eventml kafka start --secure``) runs the local broker with one
client listener, ``SASL_SSL``, that requires a TLS connection and a SCRAM-SHA-512 login, as many
production clusters do. What it needs is made once, at the first start, in ``<data dir>/secure/``
(a folder only its owner can open):

================  ===============================================================================
file              what it is
================  ===============================================================================
``ca.pem``        the certificate of a CA made for this broker alone (PEM): clients' ``ssl_cafile``
``broker.p12``    the broker's key and certificate (PKCS#12), signed by that CA, valid for
                  ``127.0.0.1``, ``localhost`` and the broker's host (subject alternative names)
``*.password``    random passwords (mode 0600): ``client.password`` for the user :data:`USERNAME`,
                  ``admin.password`` for the broker's own user :data:`ADMIN`,
                  ``keystore.password`` for ``broker.p12``
================  ===============================================================================

The CA's private key is deleted once it has signed the broker's certificate: nothing else can be
signed by it. The SCRAM credentials of both users are written into the cluster metadata when the
storage is formatted (``kafka-storage format --add-scram``, from an argument file, so no password
shows in ``ps``). The broker reaches itself (the inter-broker listener, used by transactions)
over the same ``SASL_SSL`` listener as :data:`ADMIN`; the KRaft controller listener stays
``PLAINTEXT`` on the broker's host (``127.0.0.1`` by default), which only local programs reach.

Passwords are read from their files and never printed: :func:`exports` writes the shell lines that
connect a terminal, with the password as ``"$(cat .../client.password)"``, and
:meth:`LocalKafka.settings <eventml.kafka.local.LocalKafka.settings>` is the client's
:class:`~eventml.kafka.settings.KafkaSettings`, whose ``repr`` masks it.

Guaranteed: a client that does not trust ``ca.pem``, or logs in with another password, is refused
by the broker. Not guaranteed: secrecy from the machine's root user, or from anyone who can read
the data directory's owner's files.

Examples
--------
>>> print(exports(SecureFiles("/data/secure"), "127.0.0.1:9094"))
export EVENTML_BOOTSTRAP_SERVERS=127.0.0.1:9094
export EVENTML_SECURITY_PROTOCOL=SASL_SSL
export EVENTML_SASL_MECHANISM=SCRAM-SHA-512
export EVENTML_SASL_USERNAME=eventml
export EVENTML_SASL_PASSWORD="$(cat /data/secure/client.password)"
export EVENTML_SSL_CAFILE=/data/secure/ca.pem
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import secrets
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from eventml.errors import BrokerError
from eventml.kafka.settings import ENV_NAMES, KafkaSettings

#: The SASL mechanism of the secured listener.
MECHANISM = "SCRAM-SHA-512"
#: The user clients log in as (password in ``client.password``).
USERNAME = "eventml"
#: The broker's own user, for its connections to itself (password in ``admin.password``).
ADMIN = "admin"
#: The name of the secured client listener (also its security protocol).
LISTENER = "SASL_SSL"
#: How long the certificates are valid, in days (the CA's, the broker's).
CA_DAYS, BROKER_DAYS = 3650, 825

# keytool starts a JVM per call; these flags make each start ~2x faster
_FAST_JVM = ("-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC")
_STORE_PASSWORD_ENV = "EVENTML_KEYTOOL_STOREPASS"


@dataclasses.dataclass(frozen=True)
class SecureFiles:
    """The paths of a secured broker's certificates and passwords in ``folder``."""

    folder: Path

    def __init__(self, folder: str | os.PathLike):
        object.__setattr__(self, "folder", Path(folder))

    @property
    def ca_pem(self) -> Path:
        return self.folder / "ca.pem"

    @property
    def keystore(self) -> Path:
        return self.folder / "broker.p12"

    def password_file(self, user: str) -> Path:
        """``client.password``, ``admin.password`` or ``keystore.password``."""
        return self.folder / f"{'client' if user == USERNAME else user}.password"

    def password(self, user: str) -> str:
        """The password of ``user`` (:data:`USERNAME`, :data:`ADMIN` or ``"keystore"``), read from its file."""
        try:
            return self.password_file(user).read_text().strip()
        except OSError as exc:
            raise BrokerError(f"cannot read {self.password_file(user)} ({exc.strerror}): this secured broker's "
                              "files are incomplete; start it (`eventml kafka start --secure`) to make them") from None

    @property
    def has_users(self) -> bool:
        """True once the SCRAM users' passwords exist (then the storage is formatted with them)."""
        return all(self.password_file(user).exists() for user in (USERNAME, ADMIN))

    @property
    def has_certificates(self) -> bool:
        return all(path.exists() for path in (self.ca_pem, self.keystore, self.password_file("keystore")))


def prepare(files: SecureFiles, host: str = "127.0.0.1") -> SecureFiles:
    """Make what is missing in ``files.folder``: the passwords, then the CA and the broker's keystore."""
    files.folder.mkdir(parents=True, exist_ok=True)
    files.folder.chmod(0o700)
    for user in (USERNAME, ADMIN, "keystore"):
        if not files.password_file(user).exists():
            _write_private(files.password_file(user), secrets.token_hex(24) + "\n")
    if not files.has_certificates:
        make_certificates(files, host)
    return files


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to a new file only its owner can read (mode 0600 from its creation)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as file:
        file.write(text)


# ---------------------------------------------------------------------- certificates


def keytool() -> str:
    """The JDK's ``keytool``: on PATH, else next to ``java``; :class:`BrokerError` if neither."""
    found = shutil.which("keytool")
    if found is None and (java := shutil.which("java")):
        candidate = Path(os.path.realpath(java)).parent / "keytool"
        found = str(candidate) if candidate.exists() else None
    if found is None:
        raise BrokerError("keytool (part of the JDK) was not found on PATH or next to java; it makes the secured "
                          "broker's certificates: install a full JDK 17+ (e.g. `apt install openjdk-17-jdk-headless`)")
    return found


def _keytool(password: str, *args: str, cwd: Path) -> None:
    """Run one keytool command; the store password goes through the environment, never the arguments."""
    env = {**os.environ, _STORE_PASSWORD_ENV: password}
    proc = subprocess.run([keytool(), *_FAST_JVM, *args], cwd=cwd, env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise BrokerError(f"keytool {args[0]} failed in {cwd}: {detail[-1] if detail else proc.returncode}")


def make_ca(folder: str | os.PathLike, password: str, name: str = "eventml local CA") -> Path:
    """Make a CA in ``folder``: its key in ``ca.p12`` (protected by ``password``) and its certificate
    in ``ca.pem``; return the PEM's path."""
    folder = Path(folder)
    store = ["-keystore", "ca.p12", "-storetype", "PKCS12", "-storepass:env", _STORE_PASSWORD_ENV]
    for stale in ("ca.p12", "ca.pem"):
        (folder / stale).unlink(missing_ok=True)
    _keytool(password, "-genkeypair", "-alias", "ca", "-keyalg", "EC", "-groupname", "secp256r1",
             "-dname", f"CN={name}", "-validity", str(CA_DAYS), "-ext", "BC:critical=ca:true",
             "-ext", "KU:critical=keyCertSign,cRLSign", *store, cwd=folder)
    _keytool(password, "-exportcert", "-rfc", "-alias", "ca", "-file", "ca.pem", *store, cwd=folder)
    return folder / "ca.pem"


def subject_alternative_names(host: str) -> str:
    """keytool's SAN extension value: ``127.0.0.1``, ``localhost`` and ``host``.

    >>> subject_alternative_names("10.0.0.5")
    'SAN=ip:127.0.0.1,dns:localhost,ip:10.0.0.5'
    """
    names = ["ip:127.0.0.1", "dns:localhost"]
    try:
        ipaddress.ip_address(host)
        names.append(f"ip:{host}")
    except ValueError:
        names.append(f"dns:{host}")
    return "SAN=" + ",".join(dict.fromkeys(names))


def make_certificates(files: SecureFiles, host: str = "127.0.0.1") -> None:
    """A new CA (``ca.pem``) and the broker's keystore (``broker.p12``) holding a key and a
    certificate that CA signed for ``127.0.0.1``, ``localhost`` and ``host``; the CA's key is
    deleted at the end."""
    password = files.password("keystore")
    folder = files.folder
    for stale in ("broker.p12", "broker.csr", "broker.pem", "chain.pem"):
        (folder / stale).unlink(missing_ok=True)
    store = ["-keystore", "broker.p12", "-storetype", "PKCS12", "-storepass:env", _STORE_PASSWORD_ENV]
    try:
        with ThreadPoolExecutor(2) as pool:  # the CA and the broker's key pair do not depend on each other
            ca = pool.submit(make_ca, folder, password)
            pair = pool.submit(_keytool, password, "-genkeypair", "-alias", "broker", "-keyalg", "EC",
                               "-groupname", "secp256r1", "-dname", "CN=localhost", "-validity", str(BROKER_DAYS),
                               *store, cwd=folder)
            ca.result(), pair.result()
        _keytool(password, "-certreq", "-alias", "broker", "-file", "broker.csr", *store, cwd=folder)
        _keytool(password, "-gencert", "-rfc", "-alias", "ca", "-keystore", "ca.p12", "-storepass:env",
                 _STORE_PASSWORD_ENV, "-infile", "broker.csr", "-outfile", "broker.pem", "-validity",
                 str(BROKER_DAYS), "-ext", subject_alternative_names(host),
                 "-ext", "KU:critical=digitalSignature", "-ext", "EKU=serverAuth,clientAuth",
                 cwd=folder)
        (folder / "chain.pem").write_text((folder / "broker.pem").read_text() + files.ca_pem.read_text())
        _keytool(password, "-importcert", "-noprompt", "-alias", "broker", "-file", "chain.pem", *store, cwd=folder)
    except BaseException:  # no half-made keystore left for the next start to take as done
        files.keystore.unlink(missing_ok=True)
        files.ca_pem.unlink(missing_ok=True)
        raise
    finally:
        for temporary in ("ca.p12", "broker.csr", "broker.pem", "chain.pem"):
            (folder / temporary).unlink(missing_ok=True)
    files.keystore.chmod(0o600)
    files.ca_pem.chmod(0o644)


# ---------------------------------------------------------------------- the broker and its clients


def broker_properties(files: SecureFiles, host: str, port: int, controller_port: int) -> dict[str, str]:
    """The ``server.properties`` entries of the secured broker (over the plaintext broker's)."""
    jaas = (f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
            f'password="{files.password(ADMIN)}";')
    keystore_password = files.password("keystore")
    return {
        "listeners": f"{LISTENER}://{host}:{port},CONTROLLER://{host}:{controller_port}",
        "advertised.listeners": f"{LISTENER}://{host}:{port}",
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{LISTENER}:SASL_SSL",
        "inter.broker.listener.name": LISTENER,
        "sasl.enabled.mechanisms": MECHANISM,
        "sasl.mechanism.inter.broker.protocol": MECHANISM,
        f"listener.name.{LISTENER.lower()}.{MECHANISM.lower()}.sasl.jaas.config": jaas,
        "ssl.keystore.type": "PKCS12",
        "ssl.keystore.location": str(files.keystore),
        "ssl.keystore.password": keystore_password,
        "ssl.key.password": keystore_password,
        "ssl.truststore.type": "PEM",  # the broker's own client (to itself) trusts the CA
        "ssl.truststore.location": str(files.ca_pem),
        "ssl.client.auth": "none",
    }


def format_arguments(files: SecureFiles) -> list[str]:
    """The ``kafka-storage format`` arguments that add both SCRAM users (they hold passwords:
    give them to Java in an argument file, not on the command line).

    >>> import tempfile
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for name in ("client", "admin"):
    ...         _ = (Path(folder) / f"{name}.password").write_text("pw")
    ...     format_arguments(SecureFiles(folder))[:2]
    ['--add-scram', 'SCRAM-SHA-512=[name=eventml,password=pw]']
    """
    arguments = []
    for user in (USERNAME, ADMIN):
        arguments += ["--add-scram", f"{MECHANISM}=[name={user},password={files.password(user)}]"]
    return arguments


def client_settings(files: SecureFiles, bootstrap_servers: str) -> KafkaSettings:
    """How a client connects to the secured broker: SASL_SSL, SCRAM-SHA-512 as :data:`USERNAME`,
    trusting ``ca.pem``; the environment is not read."""
    return KafkaSettings(bootstrap_servers, security_protocol="SASL_SSL", sasl_mechanism=MECHANISM,
                         sasl_username=USERNAME, sasl_password=files.password(USERNAME),
                         ssl_cafile=str(files.ca_pem), environ={})


def exports(files: SecureFiles, bootstrap_servers: str) -> str:
    """Shell lines that point ``eventml`` and notebooks at the secured broker; the password is
    read from its file when the lines run, so it is never printed."""
    values = {"bootstrap_servers": bootstrap_servers, "security_protocol": "SASL_SSL", "sasl_mechanism": MECHANISM,
              "sasl_username": USERNAME}
    lines = [f"export {ENV_NAMES[name]}={shlex.quote(value)}" for name, value in values.items()]
    lines.append(f'export {ENV_NAMES["sasl_password"]}="$(cat {shlex.quote(str(files.password_file(USERNAME)))})"')
    lines.append(f"export {ENV_NAMES['ssl_cafile']}={shlex.quote(str(files.ca_pem))}")
    return "\n".join(lines)
