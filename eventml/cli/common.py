"""What every ``eventml`` command shares: adding a command, the Kafka connection options and the
settings they make, secrets read from files, ``NAME=VALUE`` parameters, and a handler's exit code."""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from typing import Any, Callable

import orjson

from eventml.errors import ConfigError, EventmlError
from eventml.kafka.settings import ENV_NAMES, MECHANISMS, PROTOCOLS, KafkaSettings

Handler = Callable[[argparse.Namespace], int]
#: the connection options that map one to one to a KafkaSettings keyword
_OPTIONS = ("bootstrap_servers", "security_protocol", "sasl_mechanism", "sasl_username", "ssl_cafile",
            "ssl_certfile", "ssl_keyfile", "ssl_check_hostname")


def add_command(commands: Any, name: str, handler: Handler, help: str) -> argparse.ArgumentParser:
    """A sub-command of ``eventml`` (``commands`` is the parser's sub-parsers) that runs ``handler``."""
    sub = commands.add_parser(name, help=help, description=help, allow_abbrev=False)
    sub.set_defaults(handler=handler)
    return sub


def secret(path: str | None, option: str) -> str | None:
    """The text of the file given with ``option`` (a password or a key) without its line end, or None."""
    if path is None:
        return None
    try:
        with open(path, encoding="utf-8") as file:
            return file.read().rstrip("\r\n")
    except OSError as exc:
        raise ConfigError(f"cannot read the file given with {option}: {exc.strerror}") from None


def kafka_settings(args: argparse.Namespace) -> KafkaSettings:
    """The connection settings of a command: its options, else the ``EVENTML_*`` environment; the
    SASL password from ``--sasl-password-file``, the environment, or a prompt on a terminal."""
    keywords = {name: getattr(args, name, None) for name in _OPTIONS}
    keywords["sasl_password"] = secret(args.sasl_password_file, "--sasl-password-file")
    keywords["ssl_password"] = secret(args.ssl_password_file, "--ssl-password-file")
    protocol = (keywords["security_protocol"] or os.environ.get(ENV_NAMES["security_protocol"]) or "").upper()
    if (protocol.startswith("SASL_") and keywords["sasl_password"] is None
            and not os.environ.get(ENV_NAMES["sasl_password"]) and sys.stdin.isatty()):
        user = keywords["sasl_username"] or os.environ.get(ENV_NAMES["sasl_username"]) or "the SASL user"
        keywords["sasl_password"] = getpass.getpass(f"Kafka password for {user}: ") or None
    return KafkaSettings(**keywords)


class _NoPasswordArgument(argparse.Action):
    """Refuses a password on the command line without echoing it."""

    def __call__(self, parser, namespace, values, option_string=None):
        variable = ENV_NAMES["sasl_password" if "sasl" in option_string else "ssl_password"]
        parser.error(f"{option_string} is not accepted: a password on the command line shows in `ps`; "
                     f"set {variable}, or give {option_string}-file PATH")


def with_servers(sub: argparse.ArgumentParser) -> None:
    """Adds the Kafka connection options to a command."""
    kafka = sub.add_argument_group("Kafka connection (an option not given: its EVENTML_* environment variable)")
    kafka.add_argument("--bootstrap-servers", help="host:port[,host:port] (default: 127.0.0.1:9092)")
    kafka.add_argument("--security-protocol", type=str.upper, choices=PROTOCOLS, help="default: PLAINTEXT")
    kafka.add_argument("--sasl-mechanism", type=str.upper, choices=MECHANISMS, help="default: PLAIN")
    kafka.add_argument("--sasl-username")
    kafka.add_argument("--sasl-password-file", metavar="PATH",
                       help="file holding the SASL password (else EVENTML_SASL_PASSWORD, else a prompt)")
    kafka.add_argument("--ssl-cafile", metavar="PATH", help="PEM file of the CA certificates to trust")
    kafka.add_argument("--ssl-certfile", metavar="PATH", help="PEM client certificate")
    kafka.add_argument("--ssl-keyfile", metavar="PATH", help="PEM key of the client certificate")
    kafka.add_argument("--ssl-password-file", metavar="PATH", help="file holding the client key's password")
    kafka.add_argument("--no-ssl-check-hostname", dest="ssl_check_hostname", action="store_false", default=None,
                       help="do not check that a broker's certificate names its host")
    for refused in ("--sasl-password", "--ssl-password"):
        kafka.add_argument(refused, nargs="?", action=_NoPasswordArgument, help=argparse.SUPPRESS)


def parse_parameter(text: str) -> tuple[str, object]:
    """``NAME=VALUE`` as ``(name, value)``, the value read as JSON when it is JSON, else kept as text."""
    name, sep, value = text.partition("=")
    if not sep or not name:
        raise EventmlError(f"--parameter must look like NAME=VALUE, got {text!r}")
    try:
        return name, orjson.loads(value)
    except orjson.JSONDecodeError:
        return name, value


def exit_code(handler: Any, args: argparse.Namespace) -> int:
    """Run a command; its exit code, with eventml's errors as one sentence (2) and Ctrl-C as 130."""
    try:
        return handler(args)
    except EventmlError as error:
        print(f"eventml: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
