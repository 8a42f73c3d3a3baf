"""Heartbeat 3's membership protocol: wire format, signatures, receive rules, media.

Pure pieces (`wire`, `auth`, `messages`, `receive`, `history`, `liveness`)
take bytes, observations and `now`, and return messages, verdicts and
deadlines; `transports` is the thin layer that owns the sockets.
"""
