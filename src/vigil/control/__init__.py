"""The control socket: a root-only unix socket speaking one JSON object per line.

Every daemon serves its own (`ControlServer`): heartbeat (`status`, `standby`,
`takeover`, `reload`), each director instance and each volume; the CLI is the
client (`client.exchange`, `client.request`). Only root may connect: the
socket file is mode 0600 and the peer's credentials are checked.
"""

#: vigil.cf's `control_socket` default
DEFAULT_SOCKET = "/run/vigil/control.sock"
