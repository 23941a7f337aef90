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

A ``ConnectorError`` that an operator must act on (a refused credential, a host that does
not answer, a certificate not trusted, a proxy's error page) reads as three lines: what
happened in words; what to check (``check``: the environment variable, the setting of
syncd.yaml); and what the system itself said (``said``, trimmed by ``trim``: an HTML page
to its title, anything to one line of at most ``SAID_LIMIT`` characters).
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass

SAID_LIMIT = 200
"""The most characters of a system's own message kept under the words."""
_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"<[^>]+>")


def trim(text: str, limit: int = SAID_LIMIT) -> str:
    """A system's own message as one line: an HTML page reduced to its ``<title>`` (else
    its first line of text), whitespace folded, cut at ``limit`` characters."""
    text = str(text)
    if _TAG.search(text) and re.search(r"<(html|head|body|title|!doctype)", text, re.I):
        title = _TITLE.search(text)
        text = title.group(1) if title and title.group(1).strip() else _TAG.sub("\n", text)
        text = html.unescape(text)
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = " ".join(line.split())
    return line if len(line) <= limit else line[: limit - 1].rstrip() + "…"


def _causes(error: BaseException) -> list[BaseException]:
    """``error`` and what it wraps, outermost first: ``reason`` (urllib3), the first
    argument when it is an exception (requests), ``__cause__`` and ``__context__``."""
    found: list[BaseException] = []
    pending: list[BaseException] = [error]
    while pending and len(found) < 20:
        current = pending.pop(0)
        if any(current is seen for seen in found):
            continue
        found.append(current)
        reason = getattr(current, "reason", None)
        inner = [reason] if isinstance(reason, BaseException) else []
        inner += [a for a in current.args[:1] if isinstance(a, BaseException)]
        inner += [e for e in (current.__cause__, current.__context__) if e is not None]
        pending.extend(inner)
    return found


_SSL_LOCATION = re.compile(r"\s*\(_ssl\.c:\d+\)")


def connection_trouble(error: BaseException) -> tuple[str, str]:
    """Why a connection failed, from the innermost error an HTTP library wrapped: a kind
    (``tls``, ``refused``, ``dns``, ``timeout``, ``connection``) and that error's own words
    (``[Errno 111] Connection refused``), without the library's wrapping."""
    import socket
    import ssl

    causes = _causes(error)
    for cause in causes:  # the certificate's trouble first, however deep it is wrapped
        if isinstance(cause, ssl.SSLError):
            return "tls", _SSL_LOCATION.sub("", str(cause))
    for cause in causes:
        if isinstance(cause, ConnectionRefusedError):
            return "refused", str(cause)
        if isinstance(cause, socket.gaierror):
            return "dns", str(cause)
        if isinstance(cause, TimeoutError) or "timed out" in str(cause).lower():
            return "timeout", _last_words(str(cause))
    text = _last_words(str(causes[-1]))
    if "Failed to resolve" in text or "Name or service not known" in text:
        return "dns", text
    return "connection", text


def _last_words(text: str) -> str:
    """urllib3's ``NewConnectionError`` text after its connection's repr: the reason."""
    return text.rpartition(">: ")[2] if ">: " in text else text


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
    """A remote system failed; ``system`` names it and ``status`` is the HTTP status.

    ``message`` says what happened in words; ``check``, when given, what the operator
    should look at (a sentence starting with a verb: "check HUBSPOT_ACCESS_TOKEN ..."),
    and ``said`` the system's own message (trimmed to one line), or, with ``said_by``, the
    words of what else said it (``the error``: a connection's). The text of the error is
    those, one a line."""

    def __init__(
        self,
        system: str,
        message: str,
        *,
        status: int | None = None,
        check: str | None = None,
        said: str | None = None,
        said_by: str | None = None,
    ) -> None:
        self.system = system
        self.status = status
        self.message = message
        self.check = check
        self.said = trim(said) if said else None
        lines = [f"{system}: {message}"]
        if check:
            lines.append(f"  {check}")
        if self.said:
            lines.append(f"  {said_by or system + ' said'}: {self.said}")
        super().__init__("\n".join(lines))

    @property
    def headline(self) -> str:
        """The first line: what happened, without what to check or what was said."""
        return f"{self.system}: {self.message}"


class TransientError(ConnectorError):
    """Worth retrying with backoff."""


def not_reached(
    system: str, kind: str, host: str, *, check: str, said: str, error: BaseException
) -> TransientError:
    """A connection to ``host`` that did not happen, in words: ``kind`` is ``refused``,
    ``dns``, ``timeout`` or ``connection``; ``check`` what to look at (a timeout adds the
    ``timeout`` setting of the system's section), ``said`` the connection's own words."""
    words = {
        "refused": f"could not connect to {host}: the connection was refused",
        "dns": f"could not connect to {host}: the name does not resolve",
        "timeout": f"{host} did not answer in time",
        "connection": f"could not connect to {host}",
    }[kind]
    if kind == "timeout":
        check += f"; and timeout (systems.{system}.timeout: connect and read seconds)"
        said = f"{type(error).__name__}: {said}"
    return TransientError(system, words, check=check, said=said, said_by="the error")


class RateLimitedError(TransientError):
    """Rate limited; retry after ``retry_after`` seconds (None: use backoff)."""

    def __init__(
        self,
        system: str,
        message: str,
        *,
        retry_after: float | None,
        status: int | None = 429,
        check: str | None = None,
        said: str | None = None,
    ) -> None:
        super().__init__(system, message, status=status, check=check, said=said)
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
