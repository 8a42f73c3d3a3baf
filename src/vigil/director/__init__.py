"""The load-balancing director: ldirectord's job, layered as keepalived's is.

checks (`checkers/`, run by `engine`) -> health policy (`health`) -> desired
table (`vigil.lvs.table`) -> `vigil.lvs.reconcile` (desired vs actual ->
operations) -> a `Backend` (`backends/`) applies them atomically. `daemon` ties the layers together.
"""
