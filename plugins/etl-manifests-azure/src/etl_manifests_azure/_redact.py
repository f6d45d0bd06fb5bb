"""Keep SAS signatures out of the HTTP library's debug log.

With SAS authentication the signature travels in every request URL, and urllib3 logs each
request line (URL included) at DEBUG on ``urllib3.connectionpool``. azure-core's own
logging policies already mask ``sig``; this filter does the same for urllib3's lines, so a
user who turns on DEBUG logging does not write a credential into their logs.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Final

__all__ = ["install_sas_redaction", "redact"]

_SIG: Final = re.compile(r"(?i)(\bsig=)[^&\s\"']+")
_LOGGERS: Final = ("urllib3.connectionpool",)
_lock = threading.Lock()
_installed = False


def redact(text: str) -> str:
    """``text`` with the value of every ``sig=`` query parameter replaced by ``*****``."""
    return _SIG.sub(r"\1*****", text)


class _RedactSas(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {
                k: redact(v) if isinstance(v, str) else v for k, v in record.args.items()
            }
        return True


def install_sas_redaction() -> None:
    """Add the filter to urllib3's request logger, once per process."""
    global _installed
    with _lock:
        if _installed:
            return
        for name in _LOGGERS:
            logging.getLogger(name).addFilter(_RedactSas())
        _installed = True
