"""Beyond one process: a private NATS server, and (built on it) the NATS transport and workers.

Nothing here is imported by ``signalpy_lab.kernel``: NATS stays at the edge (STYLE.md). This
package's own import pulls in no NATS client either; ``server`` talks to nats-server over a plain
socket, and only the transport and worker modules import ``nats``.
"""

from .server import NatsServer, NatsServerError, NatsServerNotFoundError, find_nats_server

__all__ = ["NatsServer", "NatsServerError", "NatsServerNotFoundError", "find_nats_server"]
