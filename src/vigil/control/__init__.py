"""The control socket: a root-only unix socket speaking one JSON object per line.

The daemon serves requests (`{"command": "status"}`, `standby`, `takeover`,
`reload`); the CLI (`vigil status`, `vigil standby`, `vigil takeover`) is the
client. Only root may connect: the socket file is mode 0600 and the peer's
credentials are checked.
"""

#: vigil.cf's `control_socket` default
DEFAULT_SOCKET = "/run/vigil/control.sock"
