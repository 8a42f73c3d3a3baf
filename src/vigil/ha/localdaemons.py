"""The node's own director and volume daemons, as the status page shows them.

The heartbeat daemon does not run them: when the page is drawn it asks each
one's control socket for its status, with a short timeout, and keeps only the
fields named here (nothing else an answer carries reaches the page). A daemon
that does not answer is listed with the reason; a stale socket (the daemon is
gone) is not listed at all. `director_view` and `volume_view` are pure.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from vigil.agents.drbddisk import VOLUME_RUN_DIR
from vigil.control.client import NoDaemon, exchange
from vigil.director import codec
from vigil.director import daemon as director_daemon
from vigil.errors import VigilError

#: a page request waits at most this long for each daemon
ASK_TIMEOUT = 0.5
#: at most this many daemons of each kind are asked (a page must stay quick)
MAX_DAEMONS = 16
#: at most this many of a director's announced prefixes are shown
MAX_PREFIXES = 64

_VOLUME_TEXT = ("role", "peer_role", "connection", "replication", "disk", "peer_disk",
                "io_suspended", "sync_paused")


def _text(value: object) -> str:
    return "" if value is None else str(value)[:200]


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def director_view(instance: str, answer: Mapping[str, Any]) -> dict[str, Any]:
    """One director's services, real servers, weights and check states."""
    health: dict[tuple[str, str], Mapping[str, Any]] = {}
    rows = answer.get("health")
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict):
            health[(_text(row.get("service")), _text(row.get("real")))] = row
    try:
        table = codec.table_from_json(answer.get("table") or [])
    except (KeyError, ValueError, TypeError, AttributeError):
        return {"instance": instance, "error": "its table could not be read"}
    services = []
    shown: set[tuple[str, str]] = set()
    for service in table:
        reals = []
        for real in service.reals:
            key = (str(service.key), str(real.key))
            shown.add(key)
            row = health.get(key, {})
            reals.append({"real": str(real.key), "weight": real.weight,
                          "forward": real.forward.value, "state": _text(row.get("state")),
                          "message": _text(row.get("message"))})
        # checked servers the table does not hold now (down, quiescent no)
        for (name, real_name), row in sorted(health.items()):
            if name == str(service.key) and (name, real_name) not in shown:
                reals.append({"real": real_name, "weight": None, "forward": "",
                              "state": _text(row.get("state")),
                              "message": _text(row.get("message")) or "not in the table"})
        services.append({"service": str(service.key), "scheduler": service.scheduler,
                         "reals": reals})
    return {"instance": instance, "role": _text(answer.get("role")),
            "backend": _text(answer.get("backend")), "services": services,
            "announce": announce_view(answer.get("announce"))}


def announce_view(announce: object) -> dict[str, Any] | None:
    """What an active-active director tells its routers: each VIP's prefix, announced
    or withdrawn and why; None for a director that announces nothing."""
    if not isinstance(announce, dict):
        return None
    rows = announce.get("vips")
    prefixes = [{"prefix": _text(row.get("prefix")), "announced": row.get("announced") is True,
                 "cause": _text(row.get("cause"))}
                for row in (rows if isinstance(rows, list) else [])[:MAX_PREFIXES]
                if isinstance(row, dict)]
    return {"speaker": _text(announce.get("speaker")),
            "draining": announce.get("draining") is True, "prefixes": prefixes}


def volume_view(name: str, status: object) -> dict[str, Any]:
    """One volume's roles, disk and connection states and its sync's progress."""
    if not isinstance(status, dict):
        return {"name": name, "error": "it sent no status"}
    view: dict[str, Any] = {"name": name}
    for field in _VOLUME_TEXT:
        view[field] = _text(status.get(field))
    view["out_of_sync"] = _number(status.get("out_of_sync"))
    view["split_brain"] = bool(status.get("split_brain"))
    sync = status.get("sync")
    if isinstance(sync, dict):
        view["sync"] = {k: _number(sync.get(k)) for k in ("percent", "rate", "eta", "left_bytes")}
    else:
        view["sync"] = None
    return view


def _ask_each(sockets: list[tuple[str, Path]], message: dict[str, Any], timeout: float,
              name_field: str,
              view: Callable[[str, dict[str, Any]], dict[str, Any]]) -> list[dict[str, Any]]:
    """Each (name, socket) asked `message`: its view, a line saying why it does not
    answer, or nothing for a stale socket (the daemon is gone)."""
    views = []
    for name, path in sockets[:MAX_DAEMONS]:
        try:
            answer = exchange(path, message, timeout)
        except NoDaemon:
            continue
        except (VigilError, OSError) as exc:
            views.append({name_field: name, "error": f"does not answer: {exc}"})
            continue
        views.append(view(name, answer))
    return views


def directors(run_dir: Path | None = None, timeout: float = ASK_TIMEOUT) -> list[dict[str, Any]]:
    """Every director on this node that has a control socket."""
    where = run_dir if run_dir is not None else director_daemon.RUN_DIR
    sockets = [(path.name[len("director."):-len(".sock")], path)
               for path in sorted(where.glob("director.*.sock"))]
    return _ask_each(sockets, {"command": "status"}, timeout, "instance", director_view)


def volumes(run_dir: Path = VOLUME_RUN_DIR, timeout: float = ASK_TIMEOUT) -> list[dict[str, Any]]:
    """Every volume on this node that has a control socket."""
    sockets = [(path.parent.name, path) for path in sorted(run_dir.glob("*/control.sock"))]
    return _ask_each(sockets, {"verb": "status"}, timeout, "name",
                     lambda name, answer: volume_view(name, answer.get("status")))
