"""Prometheus `/metrics` for every vigil daemon: the address, the server, shared helpers.

Each daemon keeps its own collector in its own package (`vigil.ha.metrics`,
`vigil.director.metrics`, `vigil.replication.metrics`); this package only
serves them, so it sits below all three.
"""

from types import ModuleType

import prometheus_client

from vigil.metrics.address import LOOPBACK, MetricsAddress, parse_address
from vigil.metrics.server import MetricsServer, SnapshotCollector, exposition


def disable_created_series(client: ModuleType = prometheus_client) -> None:
    """`_created` series double every counter and no dashboard here reads them.

    prometheus-client 0.17 added `disable_created_metrics()`; Debian 12's 0.16 has
    the same module-level switch it sets (otherwise only read from the environment
    at import), so that one is set directly there.
    """
    disable = getattr(client, "disable_created_metrics", None)
    if disable is not None:
        disable()
    else:
        client.metrics._use_created = False


disable_created_series()

__all__ = ["LOOPBACK", "MetricsAddress", "MetricsServer", "SnapshotCollector", "exposition",
           "parse_address"]
