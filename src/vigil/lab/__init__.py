"""Virtual hosts on one machine: the seed's whole setup in network namespaces."""

from vigil.lab.host import Host, LabError, LabProcess
from vigil.lab.lab import Lab, existing_labs, sweep
from vigil.lab.topology import Topology, pair_topology, seed_topology, topology_named

__all__ = [
    "Host",
    "Lab",
    "LabError",
    "LabProcess",
    "Topology",
    "existing_labs",
    "pair_topology",
    "seed_topology",
    "sweep",
    "topology_named",
]
