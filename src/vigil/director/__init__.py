"""The load-balancing director: ldirectord's job, layered as keepalived's is.

checks (`checkers/`, run by `engine`) -> health policy (`health`) -> desired
table (`table`) -> `reconcile` (desired vs actual -> operations) -> a `Backend`
(`backends/`) applies them atomically. `daemon` ties the layers together.
"""
