"""Beyond one process: a private NATS server, and (built on it) the NATS transport and workers.

Nothing here is imported by ``signalpy_lab.kernel``: NATS stays at the edge (STYLE.md). This
package needs the ``[remote]`` extra (``pip install 'signalpy-lab[remote]'``); without it,
importing it, or any module in it, is a one-line ``MissingExtraError`` naming the extra. Its
own import pulls in no NATS client; ``server`` talks to nats-server over a plain socket, and
only the transport and worker modules import ``nats``.
"""

from ..extras import require_extra

require_extra("remote", "signalpy_lab.remote")

from .server import NatsServer, NatsServerError, NatsServerNotFoundError, find_nats_server  # noqa: E402

__all__ = ["NatsServer", "NatsServerError", "NatsServerNotFoundError", "find_nats_server"]
