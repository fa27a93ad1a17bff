"""``LoggingProvider``: one standard-library logger per component instance.

``self.rt.log`` is a ``logging.LoggerAdapter`` over ``signalpy_lab.components.<instance>``
that adds ``instance`` and ``tenant`` to each record, so handlers can filter by tenant.
"""

from __future__ import annotations

import logging
from typing import Any

from ..kernel import component, lifecycle, provides
from ..kernel.registry import Consumer

__all__ = ["LoggingProvider"]

ROOT = "signalpy_lab.components"


@component("logging", version="1.0")
@provides("ILogging")
class LoggingProvider:
    """Properties: ``level`` (a logging level name or number) for the components' loggers."""

    @lifecycle.activate
    def activate(self) -> None:
        level = self.rt.properties.get("level")
        if level is not None:
            logging.getLogger(ROOT).setLevel(
                level if isinstance(level, int) else str(level).upper()
            )

    def logger(self, name: str, tenant: str | None = None) -> logging.LoggerAdapter[Any]:
        """The logger of component instance ``name``."""
        return logging.LoggerAdapter(logging.getLogger(f"{ROOT}.{name}"),
                                     {"instance": name, "tenant": tenant})

    def scoped_for(self, consumer: Consumer) -> logging.LoggerAdapter[Any]:
        return self.logger(consumer.name, consumer.target)

    def __repr__(self) -> str:
        return "<LoggingProvider>"
