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


class KafkaAuthError(KafkaUnavailableError):
    """A broker answered but the connection's security failed: credentials refused, a TLS
    certificate not trusted, a SASL mechanism the broker does not enable, or a listener that does
    not speak the configured protocol.

    Parameters
    ----------
    reason
        A short code: ``"credentials"``, ``"mechanism"``, ``"untrusted_certificate"``,
        ``"hostname"``, ``"client_certificate"`` or ``"protocol"``.
    message
        A sentence that says which, and what to change. It never holds a password.

    Examples
    --------
    >>> error = KafkaAuthError("credentials", "Kafka at broker:9093 refused the password of user 'alice'")
    >>> error.reason, isinstance(error, KafkaUnavailableError)
    ('credentials', True)
    """

    def __init__(self, reason: str, message: str):
        super().__init__(message)
        self.reason = reason
        self.message = message


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
        self.reason = "model_error"  # the dead-letter reason, as EventFormatError.reason
        self.message = f"learner {learner!r} failed to {verb} event {event_id!r}: {type(error).__name__}: {error}"
        super().__init__(self.message)


class DeadLetterError(EventmlError, RuntimeError):
    """Dead letters could not be written: records that were neither delivered nor dead-lettered."""


class TopicNotFoundError(EventmlError, LookupError):
    """A topic to write to does not exist, and the cluster did not create it on first use.

    Parameters
    ----------
    topic
        The topic's name.
    bootstrap_servers
        The cluster that was asked.
    waited_s
        How long the producer waited for the topic's partitions.

    Examples
    --------
    >>> print(TopicNotFoundError("clicks", "broker:9092", 5.0))  # doctest: +NORMALIZE_WHITESPACE
    topic 'clicks' does not exist at broker:9092 and the cluster did not create it within 5 s
    (automatic topic creation is off); create it first with
    `eventml topics create clicks --partitions 1 --bootstrap-servers broker:9092`
    or `em.create_topic("clicks", partitions=1, bootstrap_servers="broker:9092")`
    """

    def __init__(self, topic: str, bootstrap_servers: str, waited_s: float):
        self.topic, self.bootstrap_servers, self.waited_s = topic, bootstrap_servers, waited_s
        super().__init__(
            f"topic {topic!r} does not exist at {bootstrap_servers} and the cluster did not create it "
            f"within {waited_s:g} s (automatic topic creation is off); create it first with "
            f"`eventml topics create {topic} --partitions 1 --bootstrap-servers {bootstrap_servers}` "
            f'or `em.create_topic("{topic}", partitions=1, bootstrap_servers="{bootstrap_servers}")`'
        )


class NotebookError(EventmlError, RuntimeError):
    """A notebook failed under papermill; the executed copy shows the failing cell."""
