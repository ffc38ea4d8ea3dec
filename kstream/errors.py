"""The kstream exception hierarchy.

Every error kstream raises on purpose derives from :class:`KStreamError`. Library exceptions
(confluent-kafka, rocksdict, fastavro, ruamel.yaml) are translated once, at the module that owns
the library, with ``raise ... from exc``. The CLI maps each class to a one-line message and an
exit code (see ``kstream_cli.errors``).
"""

from __future__ import annotations

from dataclasses import dataclass


class KStreamError(Exception):
    """Root of every error raised by kstream on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class ConfigIssue:
    """One problem found in a pipeline file.

    Attributes:
        file: path of the YAML file (or ``<string>``).
        line: 1-based line number of the offending key or value, 0 when unknown.
        key_path: dotted path of the key, e.g. ``operators[2].window.size``.
        message: what is wrong.
        hint: how to fix it.
        column: 1-based column (SQL scripts), 0 when unknown or not given.
    """

    file: str
    line: int
    key_path: str
    message: str
    hint: str = ""
    column: int = 0

    def render(self) -> str:
        """One line: ``file:line[:column]: key_path: message (hint)``."""
        where = f"{self.file}:{self.line}" if self.line else self.file
        if self.line and self.column:
            where = f"{where}:{self.column}"
        text = (
            f"{where}: {self.key_path}: {self.message}"
            if self.key_path
            else f"{where}: {self.message}"
        )
        return f"{text} — {self.hint}" if self.hint else text


class ConfigError(KStreamError):
    """The pipeline file is invalid; carries every :class:`ConfigIssue` found."""

    exit_code = 2

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = list(issues)
        super().__init__("\n".join(i.render() for i in self.issues))


class UsageError(KStreamError):
    """A command-line argument or combination is invalid."""

    exit_code = 2


class ExpressionError(KStreamError):
    """An expression failed to compile (config time) or to evaluate on a record (run time)."""


class RecordError(KStreamError):
    """A record could not be processed at one stage (deserialize, timestamp, expression, ...).

    Attributes:
        stage: one of ``deserialize``, ``timestamp``, ``expression``, ``serialize``, ``produce``.
        topic, partition, offset: where the record came from (``None`` when unknown).
    """

    def __init__(
        self,
        stage: str,
        reason: str,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.stage = stage
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset
        super().__init__(self._text())

    def _text(self) -> str:
        where = ""
        if self.topic is not None:
            where = f" at {self.topic}[{self.partition}]@{self.offset}"
        return f"bad record{where} ({self.stage}): {self.reason}"

    def located(self, topic: str, partition: int, offset: int) -> RecordError:
        """A copy of this error that names the record's topic-partition and offset."""
        return RecordError(self.stage, self.reason, topic, partition, offset)


class BrokerError(KStreamError):
    """The Kafka broker is unreachable or refused an operation."""

    exit_code = 3


class TransactionError(BrokerError):
    """A checkpoint transaction was fenced, aborted or timed out."""


class TaskMigratedError(TransactionError):
    """The task's transaction was fenced by a newer owner: the broker refused its producer epoch
    (``PRODUCER_FENCED``, ``INVALID_PRODUCER_EPOCH``) or the consumer generation of its offset
    commit (KIP-447: ``ILLEGAL_GENERATION``, ``UNKNOWN_MEMBER_ID``, ``FENCED_INSTANCE_ID``).
    The group gave the task to another member while this one was away (a zombie); the task is
    dropped here, not rewound (Kafka Streams ``TaskMigratedException``)."""


class StateError(KStreamError):
    """Local state is unusable: locked by another process, corrupt, or from another pipeline."""

    exit_code = 4


class StateLockedError(StateError):
    """Another process on this machine holds the task's RocksDB lock (it still owns the task,
    or it is a frozen zombie that has not noticed it lost it)."""


class SavepointError(KStreamError):
    """A savepoint cannot be written, read, disposed or restored: the target exists, the
    directory is not a (complete) savepoint, a file fails its checksum, the format version is
    unknown, or the savepoint does not fit the pipeline."""

    exit_code = 4
