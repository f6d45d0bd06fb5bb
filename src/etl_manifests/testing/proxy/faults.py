"""Fault injection for :class:`~etl_manifests.testing.proxy.ConditionalProxy`.

A test adds :class:`FaultRule` s through ``proxy.faults`` (a :class:`FaultRules`): the
proxy consults them for every request, before any precondition check, and answers with a
connection reset, an error status, a delay, or "the write landed but the response was
lost".
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["FaultAction", "FaultRule", "FaultRules"]

FaultAction = Literal["reset", "status", "delay", "drop_response"]

_FAULT_ACTIONS: frozenset[str] = frozenset({"reset", "status", "delay", "drop_response"})


@dataclass(eq=False)
class FaultRule:
    """One fault to inject into matching requests.

    A request matches when every given criterion matches: ``method`` (exact,
    case-insensitive), ``path_regex`` (``re.search`` on the raw, still
    percent-encoded path without the query string), ``query_regex``
    (``re.search`` on the raw query string, ``""`` when absent) and ``header``
    (a request header name that must be present).  ``None`` means "any".

    Actions:

    ``"reset"``
        Read the request, then abort the connection with a TCP RST and no
        response.  Nothing is forwarded unless ``after_forward`` is true.
    ``"status"``
        Answer ``status`` with a plausible S3 XML / GCS JSON error body.
        Nothing is forwarded unless ``after_forward`` is true, in which case
        the request reaches the emulator and its real response is replaced.
    ``"delay"``
        Sleep ``delay`` seconds, then forward normally; with ``after_forward``
        the sleep happens after the upstream answered and before relaying it.
    ``"drop_response"``
        Forward the request (so a write lands upstream), then reset the
        connection instead of relaying the response; same as ``"reset"`` with
        ``after_forward=True``.

    A rule fires at most ``times`` times (``None`` = unlimited); ``fired``
    counts how often it did.  Rules are evaluated in insertion order and only
    the first matching rule with budget left fires for a request.
    """

    method: str | None = None
    path_regex: str | None = None
    header: str | None = None
    query_regex: str | None = None
    action: FaultAction = "status"
    status: int = 503
    delay: float = 0.0
    times: int | None = 1
    after_forward: bool = False
    fired: int = 0
    _path_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)
    _query_re: re.Pattern[str] | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.action not in _FAULT_ACTIONS:
            raise ValueError(f"unknown fault action {self.action!r}")
        if self.action == "drop_response":
            self.after_forward = True
        self._path_re = re.compile(self.path_regex) if self.path_regex is not None else None
        self._query_re = re.compile(self.query_regex) if self.query_regex is not None else None

    @property
    def exhausted(self) -> bool:
        """True once the rule has fired ``times`` times."""
        return self.times is not None and self.fired >= self.times

    def matches(self, method: str, path: str, query: str, headers: Mapping[str, str]) -> bool:
        """Whether a request with these raw attributes matches the rule's criteria."""
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self._path_re is not None and not self._path_re.search(path):
            return False
        if self._query_re is not None and not self._query_re.search(query):
            return False
        return self.header is None or self.header.lower() in headers


class FaultRules:
    """Thread-safe, ordered list of :class:`FaultRule` s consulted for every request."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._rules: list[FaultRule] = []

    def add(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        header: str | None = None,
        query_regex: str | None = None,
        action: FaultAction = "status",
        status: int = 503,
        delay: float = 0.0,
        times: int | None = 1,
        after_forward: bool = False,
    ) -> FaultRule:
        """Append a rule (see :class:`FaultRule` for the semantics) and return it."""
        rule = FaultRule(
            method=method,
            path_regex=path_regex,
            header=header,
            query_regex=query_regex,
            action=action,
            status=status,
            delay=delay,
            times=times,
            after_forward=after_forward,
        )
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        """Remove every rule; requests already past rule selection are unaffected."""
        with self._lock:
            self._rules.clear()

    @property
    def rules(self) -> list[FaultRule]:
        """A snapshot of the current rules, in evaluation order."""
        with self._lock:
            return list(self._rules)

    def take(
        self, method: str, path: str, query: str, headers: Mapping[str, str]
    ) -> FaultRule | None:
        """Select the rule that fires for this request, counting the firing atomically."""
        with self._lock:
            for rule in self._rules:
                if not rule.exhausted and rule.matches(method, path, query, headers):
                    rule.fired += 1
                    return rule
        return None
