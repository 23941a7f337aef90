"""The syncd error tree, grouped by what the caller does next.

    SyncdError                      root of everything syncd raises on purpose
    ├── ConfigError                 fatal: fix the YAML (carries every problem found)
    ├── StoreError                  fatal: the state store is unusable (or does not answer)
    │   └── StoreNotReadyError      no store there, or not at this syncd's schema: a read
    │                               creates and migrates nothing; `syncd migrate` does
    ├── LeaseLostError              this daemon no longer holds the lease: stop the cycle,
    │                               write and commit nothing more, stand by
    ├── SetupError                  no writes until a blocking setup check passes (carries
    │                               every problem of ``syncd.preflight``)
    └── ConnectorError              raised at a connector's edge, never a vendor exception
        ├── TransientError          retry with backoff (5xx, connection reset, timeouts)
        │   └── RateLimitedError    retry after ``retry_after`` seconds (429, rate limits)
        ├── AuthError               fatal for that system until credentials are fixed
        ├── LimitExceededError      stop calling that system until its window resets
        └── RecordRejectedError     the system refused one record: dead-letter it, go on

Per-record rejections inside a batch are *results* (``Outcome.error``), not exceptions;
``RecordRejectedError`` is for a single-record call that failed on the record's content.
"""

from __future__ import annotations

from dataclasses import dataclass


class SyncdError(Exception):
    """Root of syncd's errors."""


@dataclass(frozen=True, slots=True)
class ConfigProblem:
    """One problem in one configuration file, located to the line and key."""

    file: str
    line: int | None
    key: str
    message: str

    @property
    def where(self) -> str:
        """``file:line``, or the file alone when the line is not known."""
        return f"{self.file}:{self.line}" if self.line else self.file

    def __str__(self) -> str:
        return f"{self.where}: {self.key}: {self.message}"


class ConfigError(SyncdError):
    """The configuration is invalid; ``problems`` lists every problem found at once."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SetupError(SyncdError):
    """A blocking setup check failed: syncd writes nothing until it passes."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__(
            "writes refused until the setup is fixed:\n" + "\n".join(f"  {p}" for p in problems)
        )


class StoreError(SyncdError):
    """The state store cannot be used (unreachable, wrong schema)."""


class StoreNotReadyError(StoreError):
    """The store a command would only read is missing, is no syncd store, or is at another
    schema revision: nothing was created or migrated. ``fix`` says what to do."""

    def __init__(self, message: str, fix: str) -> None:
        self.fix = fix
        super().__init__(message)


class LeaseLostError(SyncdError):
    """This process no longer holds the scheduler's lease: another may be writing now."""


class ConnectorError(SyncdError):
    """A remote system failed; ``system`` names it and ``status`` is the HTTP status."""

    def __init__(self, system: str, message: str, *, status: int | None = None) -> None:
        self.system = system
        self.status = status
        super().__init__(f"{system}: {message}")


class TransientError(ConnectorError):
    """Worth retrying with backoff."""


class RateLimitedError(TransientError):
    """Rate limited; retry after ``retry_after`` seconds (None: use backoff)."""

    def __init__(
        self, system: str, message: str, *, retry_after: float | None, status: int | None = 429
    ) -> None:
        super().__init__(system, message, status=status)
        self.retry_after = retry_after


class AuthError(ConnectorError):
    """Credentials are missing, wrong or revoked; retrying will not help."""


class LimitExceededError(ConnectorError):
    """The system's daily API limit is used up."""


class RecordRejectedError(ConnectorError):
    """The system refused a record's content (validation, duplicate, picklist)."""

    def __init__(self, system: str, message: str, *, code: str | None = None) -> None:
        super().__init__(system, message, status=400)
        self.code = code
