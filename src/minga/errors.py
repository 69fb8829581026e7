"""Every error minga raises, under one root.

The tree::

    MingaError                      the root: ``except MingaError`` catches everything minga raises
    ├── UsageError                  a user's mistake (bad flag, port taken, file missing): one clear line
    │   └── SpecError               minga.yaml is wrong; carries file, line and column
    ├── ProtocolError               bytes on the wire that break the NATS client protocol
    ├── BrokerError                 the embedded broker could not do what was asked
    │   └── JetStreamError          a JetStream API error, with nats-server's err_code and description
    ├── BusError                    messaging through minga.bus failed
    │   ├── PayloadError            a payload is not valid JSON or fails its type; carries the errors
    │   ├── RemoteError             the remote side raised; carries the remote type name and message
    │   ├── RequestTimeout          no reply within the typed timeout
    │   └── ServiceUnavailable      no replica serves the called method
    ├── DiscoveryError              the registry or its store failed
    │   └── NoInstanceError         a picker found no healthy instance of a service
    ├── ServiceError                the service runtime failed (lifecycle, dependency providers)
    ├── DeployError                 plan/apply/supervisor failures
    ├── MonitorError                metrics, logs, traces or alerts could not be collected or answered
    │   ├── QueryError              a metrics query or log search is malformed (also a UsageError)
    │   │   └── QueryTimeout        a query ran past its deadline; carries the seconds it was given
    │   └── CardinalityError        a metric or a query has more label sets than the guard allows
    ├── ComputeError                a MapReduce job or a parallel directive failed
    │   ├── JobFailed               a task failed more than its allowed attempts
    │   └── JobNotDeterministic     the test mode found outputs that depend on combiner runs or value order
    └── SecurityError               a credential, a signature or a permission was refused

Errors carry typed fields rather than packing everything into the message, so a
caller can act on them (``err.line``, ``err.err_code``, ``err.remote_type``).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = [
    "BrokerError",
    "BusError",
    "CardinalityError",
    "ComputeError",
    "DeployError",
    "DiscoveryError",
    "JetStreamError",
    "JobFailed",
    "JobNotDeterministic",
    "MingaError",
    "MonitorError",
    "NoInstanceError",
    "PayloadError",
    "ProtocolError",
    "QueryError",
    "QueryTimeout",
    "RemoteError",
    "RequestTimeout",
    "SecurityError",
    "ServiceError",
    "ServiceUnavailable",
    "SpecError",
    "UsageError",
]


class MingaError(Exception):
    """The root of every error minga raises."""


class UsageError(MingaError):
    """A user's mistake: the message says what is wrong and how to mend it, in one line."""


class SpecError(UsageError):
    """The system spec (minga.yaml) is invalid.

    ``path``, ``line`` and ``column`` (1-based) point at the offending node when known.
    ``problems`` holds every mistake found (one line each in ``str(err)``), the first being ``err`` itself.
    """

    def __init__(
        self, message: str, *, path: str | None = None, line: int | None = None, column: int | None = None
    ) -> None:
        self.path = path
        self.line = line
        self.column = column
        where = ""
        if path is not None:
            where = path
            if line is not None:
                where += f":{line}"
                if column is not None:
                    where += f":{column}"
            where += ": "
        super().__init__(f"{where}{message}")
        self.message = message
        self.problems: tuple[SpecError, ...] = (self,)

    @classmethod
    def collect(cls, problems: Sequence[SpecError]) -> SpecError:
        """One error for several mistakes: one line each; ``path``/``line``/``column`` are the first's."""
        if len(problems) == 1:
            return problems[0]
        first = problems[0]
        err = cls(first.message, path=first.path, line=first.line, column=first.column)
        err.problems = tuple(problems)
        err.args = ("\n".join(str(p) for p in problems),)
        return err


class ProtocolError(MingaError):
    """Bytes that break the NATS client protocol; ``message`` is what the peer is told after ``-ERR``."""


class BrokerError(MingaError):
    """The embedded broker could not do what was asked."""


class JetStreamError(BrokerError):
    """A JetStream API error, shaped as nats-server reports it.

    ``code`` is the HTTP-like status (400, 404, 503...), ``err_code`` nats-server's numeric
    error code (10059 for "stream not found"...), ``description`` its text.
    """

    def __init__(self, code: int, err_code: int, description: str) -> None:
        self.code = code
        self.err_code = err_code
        self.description = description
        super().__init__(f"{description} (code={code}, err_code={err_code})")


class BusError(MingaError):
    """Messaging through minga.bus failed."""


class RequestTimeout(BusError):
    """No reply arrived within the timeout; ``subject`` and ``timeout`` (seconds) say which."""

    def __init__(self, subject: str, timeout: float) -> None:
        self.subject = subject
        self.timeout = timeout
        super().__init__(f"no reply on {subject!r} within {timeout:g}s")


class PayloadError(BusError):
    """A payload is not valid JSON or does not match the handler's types.

    ``errors`` lists what is wrong, one entry per field, each ``{"loc": "sku", "msg": "..."}``;
    the message sums them up in one line. Built from a message alone, so it crosses the wire.
    """

    def __init__(self, message: str, errors: list[dict[str, str]] | None = None) -> None:
        self.errors = list(errors or [])
        super().__init__(message)


class ServiceUnavailable(BusError):
    """No replica listens on ``subject``: the service is not running or lacks the method."""

    def __init__(self, subject: str) -> None:
        self.subject = subject
        super().__init__(f"no replica serves {subject!r}")


class RemoteError(BusError):
    """The remote side raised an exception that is not on the caller's allow-list.

    ``remote_type`` is the remote exception's class name, ``remote_message`` its message.
    """

    def __init__(self, remote_type: str, remote_message: str) -> None:
        self.remote_type = remote_type
        self.remote_message = remote_message
        super().__init__(f"{remote_type}: {remote_message}")


class DiscoveryError(MingaError):
    """The service registry or its store failed."""


class NoInstanceError(DiscoveryError):
    """A service has no instance to pick: none registered, or none passing or warning; ``service`` names it."""

    def __init__(self, service: str) -> None:
        self.service = service
        super().__init__(f"no healthy instance of service {service!r}")


class ServiceError(MingaError):
    """The service runtime failed: lifecycle, entrypoints or dependency providers."""


class DeployError(MingaError):
    """Planning, applying or supervising a deployment failed."""


class MonitorError(MingaError):
    """The monitoring layer could not collect or answer something."""


class QueryError(MonitorError, UsageError):
    """A metrics query or a log search is malformed; ``query`` is what was asked."""

    def __init__(self, query: str, problem: str) -> None:
        self.query = query
        self.problem = problem
        super().__init__(f"bad query {query!r}: {problem}")


class QueryTimeout(QueryError):
    """A query ran past its deadline of ``seconds``; it was stopped."""

    def __init__(self, query: str, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(
            query, f"stopped after its deadline of {seconds:g}s: narrow the selector, shorten the range or raise the step"
        )


class CardinalityError(MonitorError, UsageError):
    """Too many label sets: ``metric`` would exceed ``limit`` series (``labels``: the one refused)."""

    def __init__(self, metric: str, limit: int, labels: dict[str, str] | None = None) -> None:
        self.metric = metric
        self.limit = limit
        self.labels = dict(labels or {})
        super().__init__(
            f"{metric} has more than {limit} label sets: drop high-cardinality labels (ids, paths with ids) "
            "or aggregate with `sum by (...)` over fewer labels"
        )


class ComputeError(MingaError):
    """A MapReduce job or a parallel directive failed."""


class SecurityError(MingaError):
    """A credential, a signature or a permission was refused; the message says which and why."""


class JobFailed(ComputeError):
    """A task failed more often than the job allows; ``task`` names it and ``attempts`` counts the tries."""

    def __init__(self, task: str, attempts: int, cause: str) -> None:
        self.task = task
        self.attempts = attempts
        self.cause = cause
        super().__init__(f"task {task} failed after {attempts} attempt(s): {cause}")


class JobNotDeterministic(ComputeError):
    """A job's output changed when the test mode exercised MapReduce's freedoms (combiner
    runs, value order, re-execution): ``seed`` reproduces it, ``difference`` shows the first change."""

    def __init__(self, seed: int, difference: str) -> None:
        self.seed = seed
        self.difference = difference
        super().__init__(
            f"output differs under the test mode with seed {seed}: {difference} "
            "(is the combiner associative and commutative, and the reducer independent of value order?)"
        )
