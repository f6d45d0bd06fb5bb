"""Credential-free text: what may go into an error message, a repr or a log line.

Errors raised by the libraries this one calls (s3fs, gcsfs, botocore, google-auth,
requests, pydantic) can quote credentials: a URL with ``access_token=`` in its query, an
endpoint with ``user:password@``, a settings value echoed back. This library never chains
such an exception into one of its own and never prints its text unfiltered; it describes it
with :func:`describe`, which scrubs

* every secret-looking value of the storage options in force (:func:`secret_values`), and
* whatever looks like a credential whatever its origin: a URL's user information, query
  parameters named like credentials, private-key blocks, ``Bearer``/``Basic``/``SharedKey``
  authorization values, Google OAuth access tokens (``ya29.``) and AWS access key ids.

A caller may rely on this: the text returned never contains a value that
:func:`secret_values` found, nor anything the patterns above match.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["describe", "excerpt", "redact", "redact_url", "secret_values", "strip_userinfo"]

MASK = "***"
#: Longest description kept from a third-party error (its start says what happened).
MAX_DESCRIPTION = 300

# Option names whose values are credentials (matched anywhere in the name, any case).
_SECRET_NAME = re.compile(
    r"key|secret|token|passw|pwd|credential|private|auth|session|signature|sas|cert|assertion",
    re.IGNORECASE,
)
# Values of such options that only name a way to authenticate (gcsfs's ``token=``).
_NOT_SECRETS = frozenset({"anon", "browser", "cache", "cloud", "google_default", "token"})
# Shorter values would be scrubbed out of ordinary words; no real credential is that short.
_MIN_SECRET = 6
# The password of a "user:password@host" anywhere in a string (with or without a scheme).
_URL_PASSWORD = re.compile(r"(?:^|//|\s)(?:[a-zA-Z][a-zA-Z0-9+.-]*://)?[^/@\s:]*:([^@\s]+)@")

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    # scheme://user:password@host -> scheme://***@host
    (re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s'\"]*@"), rf"\1{MASK}@"),
    # ?access_token=...&X-Amz-Signature=... (query strings, form bodies)
    (
        re.compile(
            r"((?:[?&;]|\b)(?:access_token|refresh_token|id_token|token|client_secret|secret|"
            r"password|passwd|pwd|key|sig|signature|assertion|code|"
            r"x-amz-security-token|x-amz-signature|x-amz-credential|"
            r"x-goog-signature|x-goog-credential)=)[^&\s'\"]+",
            re.IGNORECASE,
        ),
        rf"\1{MASK}",
    ),
    # "private_key": "-----BEGIN ..." and friends, as JSON or as a Python repr
    (
        re.compile(
            r"""((['"])(?:private_key|private_key_id|client_secret|refresh_token|"""
            r"""access_token|secret|password|token|key|session_token)\2\s*:\s*(['"]))"""
            r"""(?:\\.|(?!\3).)*""",
            re.IGNORECASE | re.DOTALL,
        ),
        rf"\1{MASK}",
    ),
    (
        re.compile(
            r"-----BEGIN[A-Z ]*PRIVATE KEY-----.*?(?:-----END[A-Z ]*PRIVATE KEY-----|$)", re.S
        ),
        "[private key]",
    ),
    (
        re.compile(
            r"\b(Bearer|Basic|AWS4-HMAC-SHA256|SharedKey|SharedKeyLite)\s+[^\s'\",]+",
            re.IGNORECASE,
        ),
        rf"\1 {MASK}",
    ),
    (re.compile(r"\bya29\.[A-Za-z0-9._~+/=-]+"), MASK),
    (re.compile(r"\b(?:AKIA|ASIA|AIDA|AROA|AGPA|ANPA|ANVA|AIPA)[A-Z0-9]{12,}\b"), MASK),
)


def secret_values(options: Mapping[str, Any] | None) -> frozenset[str]:
    """Every secret-looking string in ``options``, nested ones included.

    A string counts when its option's name (or an enclosing one) looks like a credential
    (``key``, ``secret``, ``token``, ``password``, ``private_key``, ...), and so do the
    ``token``/``refresh_token``/``client_secret`` of a credentials object passed as a value.
    """
    found: set[str] = set()
    _collect(options or {}, False, found)
    return frozenset(value for value in found if len(value) >= _MIN_SECRET)


def _collect(value: Any, secret: bool, found: set[str]) -> None:
    if isinstance(value, str):
        if secret and value not in _NOT_SECRETS:
            found.add(value)
            # A PEM block may be quoted line by line (or with its newlines escaped).
            found.update(line for line in value.splitlines() if len(line) >= 16)
        # Any option may be a URL with a password in it (an endpoint, a proxy).
        found.update(_URL_PASSWORD.findall(value))
    elif isinstance(value, bytes | bytearray):
        if secret:
            found.add(bytes(value).decode("utf-8", "replace"))
    elif isinstance(value, Mapping):
        for name, item in value.items():
            _collect(item, secret or bool(_SECRET_NAME.search(str(name))), found)
    elif isinstance(value, list | tuple | set | frozenset):
        for item in value:
            _collect(item, secret, found)
    elif value is not None and not isinstance(value, int | float | bool):
        # A credentials object (google.oauth2.credentials.Credentials, botocore's, ...).
        for attr in ("token", "refresh_token", "client_secret", "secret_key", "access_key"):
            _collect(getattr(value, attr, None), True, found)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every value of ``secrets`` and every credential-looking part masked."""
    for secret in sorted(secrets, key=len, reverse=True):
        if secret:
            # As given, and as it appears inside a URL (a lone surrogate, which no codec
            # takes, is percent-encoded as Python would pass it through).
            url_forms = (
                quote(secret, safe="", errors="surrogatepass"),
                quote_plus(secret, safe="", errors="surrogatepass"),
            )
            for form in {secret, *url_forms}:
                text = text.replace(form, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def _split_userinfo(url: str) -> tuple[str, str | None, str]:
    """``(scheme, userinfo or None, rest)`` of ``scheme://[userinfo@]rest``."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return "", None, url
    netloc = rest.split("/", 1)[0]
    # Credentials are often pasted unencoded (AWS secret keys contain "/"), so when the
    # first segment holds a ":" (never part of a bucket name) and an "@" follows, the user
    # information runs to that "@", not only to the first "/".
    if "@" in netloc or (":" in netloc and "@" in rest):
        userinfo, _, rest = rest.partition("@")
        return scheme, userinfo, rest
    return scheme, None, rest


def strip_userinfo(url: str) -> str:
    """``scheme://user:password@rest`` -> ``scheme://rest``; other text is returned as is."""
    scheme, userinfo, rest = _split_userinfo(url)
    return url if userinfo is None else f"{scheme}://{rest}"


def redact_url(url: str) -> str:
    """``url`` with its user information masked and credential-like parameters scrubbed."""
    scheme, userinfo, rest = _split_userinfo(url)
    return redact(url if userinfo is None else f"{scheme}://{MASK}@{rest}")


def excerpt(text: str, secrets: Iterable[str] = (), limit: int = MAX_DESCRIPTION) -> str:
    """At most ``limit`` characters of ``text`` on one line, scrubbed as :func:`redact` does.

    Scrubbed *before* it is cut: a credential cut in half no longer matches a pattern or
    a known secret, and half of it must not survive either.
    """
    text = " ".join(redact(text, secrets).split())
    if len(text) > limit:
        text = text[: limit - 3] + "..."
    return text


def describe(exc: BaseException, secrets: Iterable[str] = ()) -> str:
    """A short, credential-free ``"TypeName: message"`` for an exception from elsewhere."""
    name = type(exc).__name__
    try:
        text = str(exc)
    except Exception:  # a broken __str__ must not hide the real failure
        text = ""
    text = excerpt(text, secrets)
    return f"{name}: {text}" if text else name
