"""The LVS model at the ground: virtual services and real servers (`table`), the
changes between two tables (`operations`, `reconcile`) and the schedulers with
their stable slot tables (`schedulers`).

Pure data and decisions, no I/O: the director decides what the table should
be, the data paths (`vigil.dataplane`, the director's backends) carry it out,
and both speak this model.
"""
