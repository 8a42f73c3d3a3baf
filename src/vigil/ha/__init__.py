"""High availability: which node runs which resource group, and the daemon that does it.

`decision` is the pure failover core (per-group placement, failback,
standby/takeover, ipfail, split brain, fencing); `engine` joins it to the
membership protocol as one pure node; `daemon` is the thin asyncio shell.
Groups are driven through the `GroupDriver` protocol of `groups`.
"""
