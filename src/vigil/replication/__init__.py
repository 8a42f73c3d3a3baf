"""Replicated volumes: DRBD's job in user space.

The pure cores (no I/O, an injected clock where time matters):
`generations` (who syncs from whom on connect), `bitmap` and `activity_log`
(what is out of sync, what may have been in flight), `completion` (when a write
completes under protocol A, B or C), `rate` (resync rate control), `timers`
(reconnect and ping timing), `split_brain` (after-sb policies), `auth`
(cram-hmac challenge-response), `wire` (peer messages) and `metadata` (the
on-disk format).

The shell around them: `blockstore` (backing file or device), `mdstore`
(metadata I/O), `node` (one resource: roles, peer link, replication, resync,
verify), `fuse_frontend` + `loopdev` + `devnode` (the block device a file
system mounts), `control` (the daemon's unix socket) and `daemon`.
"""
