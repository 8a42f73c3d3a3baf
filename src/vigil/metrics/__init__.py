"""Prometheus `/metrics` for every vigil daemon: the address, the server, shared helpers.

Each daemon keeps its own collector in its own package (`vigil.ha.metrics`,
`vigil.director.metrics`, `vigil.replication.metrics`); this package only
serves them, so it sits below all three.
"""

from prometheus_client import disable_created_metrics

from vigil.metrics.address import LOOPBACK, MetricsAddress, parse_address
from vigil.metrics.server import MetricsServer, SnapshotCollector, exposition

# `_created` series double every counter and no dashboard here reads them
disable_created_metrics()

__all__ = ["LOOPBACK", "MetricsAddress", "MetricsServer", "SnapshotCollector", "exposition",
           "parse_address"]
