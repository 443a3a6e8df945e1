"""Log lines for machines: one JSON object per line, secrets never in them.

The servers log through :mod:`logging` (loggers under ``telnyx_audio``) and pass what a line
is about as ``extra``: ``event`` (``stream_started``, ``stream_ended``, ``refused``...),
``stream_id``, ``call_control_id``, ``peer`` and ``figures`` (a dict of numbers).
:class:`JsonFormatter` writes those as one object::

    {"time": "2026-12-07T07:05:49.123456Z", "level": "info", "event": "stream_ended",
     "logger": "telnyx_audio.server", "message": "stream s1 ended (stop): 400 frames ...",
     "stream_id": "s1", "call_control_id": "v3:...", "peer": "192.0.2.7",
     "figures": {"frames": 400, "seconds": 8.0}}

Every secret handed to the formatter (the stream auth token) is replaced by ``***`` wherever
it would appear, in the message, the fields or a traceback: the servers never log it, and
this makes sure.
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any, Iterable, TextIO

__all__ = ["JsonFormatter", "TextFormatter", "configure_logging", "FIELDS"]

#: The structured fields a server may attach to a line (``extra=``), in output order.
FIELDS = ("event", "stream_id", "call_control_id", "session_id", "peer", "reason", "folder", "figures")
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
MASK = "***"


class _Masking:
    def __init__(self, secrets: Iterable[str | None]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 1}, key=len, reverse=True)

    def mask(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record: time (UTC), level, event, logger, message and the fields.

    Parameters
    ----------
    secrets : iterable of str
        Replaced by ``***`` wherever they appear.

    Examples
    --------
    >>> import logging
    >>> record = logging.makeLogRecord({"msg": "stream %s from %s", "args": ("s1", "192.0.2.7"),
    ...     "levelname": "INFO", "name": "telnyx_audio.server", "created": 0.0,
    ...     "event": "stream_started", "stream_id": "s1", "figures": {"frames": 3}, "token_seen": "sekrit"})
    >>> print(JsonFormatter(secrets=["sekrit"]).format(record))
    {"time": "1970-01-01T00:00:00.000000Z", "level": "info", "event": "stream_started", "logger": "telnyx_audio.server", "message": "stream s1 from 192.0.2.7", "stream_id": "s1", "figures": {"frames": 3}, "token_seen": "***"}
    """

    def __init__(self, *, secrets: Iterable[str | None] = ()) -> None:
        super().__init__()
        self._masking = _Masking(secrets)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line of JSON, secrets masked.

        Parameters
        ----------
        record : logging.LogRecord
            The record to format.

        Returns
        -------
        str
            One JSON object, without a newline.
        """
        when = datetime.fromtimestamp(record.created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out: dict[str, Any] = {"time": when, "level": record.levelname.lower(),
                               "event": getattr(record, "event", None) or "log", "logger": record.name,
                               "message": record.getMessage()}
        for key in FIELDS[1:]:
            value = getattr(record, key, None)
            if value is not None:
                out[key] = value
        for key, value in vars(record).items():  # any other extra a caller gave
            if key not in _STANDARD and key not in out and key not in FIELDS and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return self._masking.mask(json.dumps(out, default=str, ensure_ascii=False))


class TextFormatter(logging.Formatter):
    """The console's plain lines (``time level logger: message``), secrets masked."""

    def __init__(self, *, secrets: Iterable[str | None] = ()) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self._masking = _Masking(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return self._masking.mask(super().format(record))


def configure_logging(*, level: str = "info", fmt: str = "text", secrets: Iterable[str | None] = (),
                      stream: TextIO | None = None, logger: str = "telnyx_audio") -> logging.Handler:
    """Send ``logger``'s lines (the servers') to ``stream`` (stderr) as text or JSON.

    Parameters
    ----------
    level : {"debug", "info", "warning", "error"}
    fmt : {"text", "json"}
    secrets : iterable of str
        Masked in every line (the auth token).
    stream : file, optional
        Where the lines go (stderr by default).
    logger : str
        The logger whose lines are sent.

    Returns
    -------
    logging.Handler
        The handler added (remove it with ``logging.getLogger(logger).removeHandler``).

    Examples
    --------
    >>> import io, logging
    >>> out = io.StringIO()
    >>> handler = configure_logging(fmt="json", secrets=["t0k"], stream=out, logger="demo.service")
    >>> logging.getLogger("demo.service").info("token t0k seen", extra={"event": "demo", "peer": "192.0.2.7"})
    >>> json.loads(out.getvalue())["message"], json.loads(out.getvalue())["peer"]
    ('token *** seen', '192.0.2.7')
    """
    if fmt not in ("text", "json"):
        raise ValueError(f"log format must be 'text' or 'json', got {fmt!r}")
    if level.lower() not in ("debug", "info", "warning", "error"):
        raise ValueError(f"log level must be debug, info, warning or error, got {level!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter(secrets=secrets) if fmt == "json" else TextFormatter(secrets=secrets))
    root = logging.getLogger(logger)
    root.addHandler(handler)
    root.setLevel(level.upper())
    return handler
