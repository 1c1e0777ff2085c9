"""Logging set-up; every record carries the current request ID (``-`` outside requests)."""

from __future__ import annotations

import contextvars
import logging
import logging.config
from pathlib import Path

import yaml

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def setup_logging(level: str = "INFO", log_config: str | None = None) -> None:
    """Use the admin's dictConfig YAML if given, else a plain stderr handler at ``level``."""
    if log_config:
        logging.config.dictConfig(yaml.safe_load(Path(log_config).read_text()))
    else:
        stream = logging.StreamHandler()
        stream.setFormatter(logging.Formatter(_FORMAT))
        root = logging.getLogger()
        root.handlers[:] = [stream]
        root.setLevel(level)
    for handler in logging.getLogger().handlers:
        handler.addFilter(RequestIdFilter())
