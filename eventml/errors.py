"""The one root exception of eventml and its specific subclasses.

Every error eventml raises on purpose is an :class:`EventmlError`, so a notebook can catch
them all with one ``except`` and still read a specific, one-sentence message.
"""


class EventmlError(Exception):
    """Root of every error eventml raises on purpose."""


class ConfigError(EventmlError, ValueError):
    """A parameter or client setting is unknown or has a value that is not accepted."""


class EventFormatError(EventmlError, ValueError):
    """A record does not follow the wire format.

    Parameters
    ----------
    reason
        A short machine-readable code (``"not_json"``, ``"missing_id"``, ...), written to the
        dead-letter headers.
    message
        A sentence a person can read.
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


class SourceError(EventmlError, ValueError):
    """An event source was asked for something it cannot give."""


class BrokerError(EventmlError, RuntimeError):
    """The local Kafka broker could not be set up, started or stopped."""


class KafkaUnavailableError(EventmlError, RuntimeError):
    """No Kafka broker answered at the configured bootstrap servers."""


class SnapshotError(EventmlError, RuntimeError):
    """A live updater's snapshot cannot be read, or its state directory does not match Kafka's offsets."""


class ModelError(EventmlError, RuntimeError):
    """A learner raised while predicting or learning one event.

    Parameters
    ----------
    learner
        The learner's name.
    event_id
        The id of the event it failed on.
    stage
        ``"predict"`` or ``"learn"``.
    error
        What the learner raised.

    Examples
    --------
    >>> print(ModelError("mine", "e-7", "learn", TypeError("bad operand")))
    learner 'mine' failed to learn from event 'e-7': TypeError: bad operand
    """

    def __init__(self, learner: str, event_id: str, stage: str, error: BaseException):
        self.learner, self.event_id, self.stage, self.error = learner, event_id, stage, error
        verb = "learn from" if stage == "learn" else stage
        super().__init__(f"learner {learner!r} failed to {verb} event {event_id!r}: "
                         f"{type(error).__name__}: {error}")


class DeadLetterError(EventmlError, RuntimeError):
    """Dead letters could not be written: records that were neither delivered nor dead-lettered."""
