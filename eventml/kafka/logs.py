"""Kafka clients' log lines, with every password eventml was given masked.

kafka-python logs at DEBUG the requests it sends, a SASL/PLAIN password among them, and its admin
client logs its whole configuration. Every :class:`~eventml.kafka.settings.KafkaSettings` registers
its passwords here, and :func:`protect` puts a filter on a logger that replaces them (as text, as
Python writes them in a ``repr``, and inside ``bytes``) with ``***`` in the message and the
traceback of each record, before any handler sees it. eventml protects kafka-python's loggers
and the loggers it gives librdkafka.

Examples
--------
>>> import logging
>>> register_secrets("hunter2")
>>> record = logging.LogRecord("kafka.net.connection", logging.DEBUG, __file__, 1,
...                            "Request 3: auth_bytes=%r", (b"alice\\x00alice\\x00hunter2",), None)
>>> _FILTER.filter(record) and record.getMessage()
"Request 3: auth_bytes=b'alice\\\\x00alice\\\\x00***'"
"""

from __future__ import annotations

import logging
import threading

MASK = "***"

_lock = threading.Lock()
_variants: tuple[str, ...] = ()  # every secret as it may appear in a log line, longest first


def register_secrets(*secrets: str | None) -> None:
    """Mask these secrets (None and empty ones are skipped) in the lines of protected loggers."""
    global _variants
    found = set()
    for secret in secrets:
        if secret:
            found.update({secret, repr(secret)[1:-1], repr(secret.encode("utf-8"))[2:-1]})
    with _lock:
        if not found <= set(_variants):
            _variants = tuple(sorted(set(_variants) | found, key=len, reverse=True))


def mask(text: str) -> str:
    """``text`` with every registered secret replaced by ``***``."""
    for secret in _variants:
        if secret in text:
            text = text.replace(secret, MASK)
    return text


class _MaskSecrets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _variants:
            return True
        try:
            message = record.getMessage()
        except Exception:  # a broken record is the logging module's to report
            return True
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        return True


_FILTER = _MaskSecrets()


def protect(logger: logging.Logger | str) -> None:
    """Mask registered secrets in the records ``logger`` (a logger or its name) emits."""
    if isinstance(logger, str):
        logger = logging.getLogger(logger)
    if isinstance(logger, logging.Logger) and _FILTER not in logger.filters:
        logger.addFilter(_FILTER)


def protect_tree(root: str) -> None:
    """:func:`protect` ``root`` and every logger below it that exists now (a filter acts only on the
    records of its own logger, so each one gets it)."""
    protect(root)
    for name, logger in list(logging.root.manager.loggerDict.items()):
        if name.startswith(root + ".") and isinstance(logger, logging.Logger):
            protect(logger)


#: a transaction failed because a group rebalance ended meanwhile: the live updater aborts it and says so itself
_REBALANCED = ("(ILLEGAL_GENERATION)", "(UNKNOWN_MEMBER_ID)", "(REBALANCE_IN_PROGRESS)")


def _retries_at_debug(record: logging.LogRecord) -> bool:
    """librdkafka's warnings and notices are retries it makes by itself (e.g. "Failed to acquire
    transactional PID ... retrying" after a kill, "Coordinator load in progress" on a new broker):
    debug lines, kept only when the logger is enabled for DEBUG; its errors stay errors, except a
    transaction refused for a rebalance (:data:`_REBALANCED`), which its caller handles."""
    message = record.getMessage()
    if record.levelno < logging.ERROR or (message.startswith("TXNERR") and message.endswith(_REBALANCED)):
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)
    return True


def quiet_retries(logger: logging.Logger) -> None:
    """Send a librdkafka client logger's retries to DEBUG (see :func:`_retries_at_debug`)."""
    if _retries_at_debug not in logger.filters:
        logger.addFilter(_retries_at_debug)
