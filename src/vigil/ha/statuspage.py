"""The heartbeat daemon's status page: the cluster as this node sees it, as HTML and JSON.

`page_data` picks what the page shows out of the daemon's status (the dict
`vigil status --json` prints), the resources of each group and the timeline's
events: only named fields are copied, so nothing the status may grow later
(and no secret) reaches the page unless it is added here. The load balancer and the
volumes come from the node's own `vigil director` and `vigil volume` daemons
(`localdaemons`), asked when the page is drawn. `render_json` and
`render_html` turn that into the two answers; the page is one self-contained
document (inline style and script, nothing fetched from elsewhere) that asks
`status.json` again every second and redraws itself from it without a reload.

Every value on the page comes from configuration files or from the network
(node, link and group names, reasons): the HTML escapes each one, and the
script only ever sets text (`textContent`), never markup.
"""

from __future__ import annotations

import html
import json
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from vigil.config.base import mask_secrets

#: how often the page asks for status.json again (ms)
POLL_MS = 1000
#: what the page says when this node runs no director or no volume
NO_DIRECTOR = "no vigil director runs on this node"
NO_VOLUME = "no vigil volume runs on this node"

_NODE_FIELDS = ("name", "type", "status", "self", "last_heard_ago", "generation", "vigil",
                "deadtime")
_LINK_FIELDS = ("name", "status", "last_heard_ago")
_GROUP_FIELDS = ("key", "home", "state", "peer_state", "peer_last_known", "holder",
                 "handing_over", "asked_for", "why")


def _pick(source: Mapping[str, Any], names: Iterable[str]) -> dict[str, Any]:
    return {name: source[name] for name in names if name in source}


def page_data(status: Mapping[str, Any], resources: Mapping[str, Sequence[str]],
              events: Sequence[Mapping[str, Any]], now: float | None = None,
              lvs: Sequence[Mapping[str, Any]] = (),
              volumes: Sequence[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """What the page shows: named fields of `status`, each group's resources (secrets
    masked), the timeline's events, the node's directors and volumes (already picked
    by `localdaemons`), and when this was taken (`generated`)."""
    nodes = []
    for node in status.get("nodes", []):
        entry = _pick(node, _NODE_FIELDS)
        if "links" in node:
            entry["links"] = [_pick(link, _LINK_FIELDS) for link in node["links"]]
        nodes.append(entry)
    groups = []
    for group in status.get("groups", []):
        entry = _pick(group, _GROUP_FIELDS)
        entry["resources"] = [mask_secrets(r) for r in resources.get(str(group.get("key")), ())]
        groups.append(entry)
    daemon = status.get("daemon", {})
    return {
        "node": status.get("node"),
        "phase": status.get("phase"),
        "comm_up": status.get("comm_up"),
        "auto_failback": status.get("auto_failback"),
        "fencing": status.get("fencing"),
        "ping_reach": status.get("ping_reach"),
        "peer_ping_reach": status.get("peer_ping_reach"),
        "timings": dict(status.get("timings", {})),
        "daemon": _pick(daemon, ("version", "pid", "driver")),
        "nodes": nodes,
        "groups": groups,
        "events": [{"id": e.get("id"), "at": e.get("at"), "event": e.get("event"),
                    "fields": dict(e.get("fields", {}))} for e in events],
        "lvs": [dict(d) for d in lvs],
        "volumes": [dict(v) for v in volumes],
        "generated": round(time.time() if now is None else now, 3),
    }


def render_json(data: Mapping[str, Any]) -> bytes:
    return json.dumps(data).encode()


# -- HTML ------------------------------------------------------------------------------------
def _e(value: object) -> str:
    """Any value as HTML text or attribute value (quotes escaped too)."""
    return html.escape("" if value is None else str(value), quote=True)


def _ago(seconds: object) -> str:
    return "never" if seconds is None else f"{float(seconds):.1f}s ago"  # type: ignore[arg-type]


def _clock(at: object) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(float(at))) if at is not None else ""  # type: ignore[arg-type]


def _summary(data: Mapping[str, Any]) -> str:
    parts = [f"phase {data.get('phase')}",
             "communication up" if data.get("comm_up") else "communication not up",
             f"fencing {data.get('fencing')}", f"auto_failback {data.get('auto_failback')}"]
    timings = data.get("timings") or {}
    if timings:
        parts.append(f"keepalive {timings.get('keepalive')}s, deadtime {timings.get('deadtime')}s")
    return " · ".join(parts)


def _state(group: Mapping[str, Any]) -> str:
    text = f"here {group.get('state')}"
    if group.get("peer_state"):
        text += f", there {group.get('peer_state')}"
    elif group.get("peer_last_known"):
        text += f", there last {group.get('peer_last_known')}"
    if group.get("handing_over"):
        text += ", being handed over"
    if group.get("asked_for"):
        text += ", asked for"
    return text


def _fields(fields: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in fields.items())


def _node_row(node: Mapping[str, Any]) -> str:
    links = "".join(
        f'<span class="link s-{_e(link.get("status"))}" data-link="{_e(link.get("name"))}">'
        f'{_e(link.get("name"))} {_e(link.get("status"))}</span>'
        for link in node.get("links", []))
    name = _e(node.get("name")) + (" (this node)" if node.get("self") else "")
    heard = "" if node.get("self") else _ago(node.get("last_heard_ago"))
    return (f'<tr data-node="{_e(node.get("name"))}" class="s-{_e(node.get("status"))}">'
            f'<td class="name">{name}</td><td class="type">{_e(node.get("type"))}</td>'
            f'<td class="status">{_e(node.get("status"))}</td>'
            f'<td class="heard">{_e(heard)}</td><td class="links">{links}</td></tr>')


def _group_row(group: Mapping[str, Any]) -> str:
    holder = " and ".join(str(h) for h in group.get("holder", [])) or "nobody"
    resources = "".join(f"<li>{_e(r)}</li>" for r in group.get("resources", []))
    return (f'<tr data-group="{_e(group.get("key"))}">'
            f'<td class="key">{_e(group.get("key"))}</td>'
            f'<td class="holder">{_e(holder)}</td><td class="home">{_e(group.get("home"))}</td>'
            f'<td class="state">{_e(_state(group))}</td>'
            f'<td class="resources"><ul>{resources}</ul></td></tr>')


def _real_row(real: Mapping[str, Any]) -> str:
    weight = real.get("weight")
    return (f'<tr data-real="{_e(real.get("real"))}" class="c-{_e(real.get("state"))}">'
            f'<td class="real">{_e(real.get("real"))}</td>'
            f'<td class="weight">{_e("-" if weight is None else weight)}</td>'
            f'<td class="forward">{_e(real.get("forward"))}</td>'
            f'<td class="check">{_e(real.get("state"))}</td>'
            f'<td class="message">{_e(real.get("message"))}</td></tr>')


def _director_block(view: Mapping[str, Any]) -> str:
    head = (f'<h3 data-director="{_e(view.get("instance"))}">director {_e(view.get("instance"))}'
            + (f' ({_e(view.get("role"))}, {_e(view.get("backend"))} backend)'
               if not view.get("error") else f": {_e(view.get('error'))}") + "</h3>")
    blocks = [_announce_block(view.get("announce"))]
    for service in view.get("services", []):
        rows = "".join(_real_row(r) for r in service.get("reals", []))
        blocks.append(
            f'<table data-service="{_e(service.get("service"))}"><caption>'
            f'{_e(service.get("service"))} {_e(service.get("scheduler"))}</caption>'
            '<thead><tr><th>real server</th><th>weight</th><th>forward</th><th>check</th>'
            f'<th>said</th></tr></thead><tbody>{rows}</tbody></table>')
    return head + "".join(blocks)


def _announce_block(announce: Mapping[str, Any] | None) -> str:
    """The routes an active-active director announces: one line per prefix."""
    if not announce:
        return ""
    items = "".join(
        f'<li data-prefix="{_e(p.get("prefix"))}" class="{"up" if p.get("announced") else "down"}">'
        f'{_e(p.get("prefix"))}: {"announced" if p.get("announced") else "withdrawn"}'
        f' ({_e(p.get("cause"))})</li>' for p in announce.get("prefixes", []))
    draining = ", draining" if announce.get("draining") else ""
    return (f'<div class="announce">announced to the routers through '
            f'{_e(announce.get("speaker"))}{draining}<ul>{items}</ul></div>')


def _sync_text(sync: Mapping[str, Any] | None) -> str:
    if not sync:
        return ""
    text = f"{sync.get('percent') or 0:.1f}%"
    if sync.get("rate"):
        text += f" at {float(sync['rate']) / 1048576:.1f} MiB/s"
    if sync.get("eta") is not None:
        text += f", {float(sync['eta']):.0f}s left"
    return text


def _volume_row(volume: Mapping[str, Any]) -> str:
    if volume.get("error"):
        return (f'<tr data-volume="{_e(volume.get("name"))}"><td class="name">'
                f'{_e(volume.get("name"))}</td><td colspan="5">{_e(volume.get("error"))}</td></tr>')
    roles = f"{volume.get('role')}/{volume.get('peer_role')}"
    disks = f"{volume.get('disk')}/{volume.get('peer_disk')}"
    state = str(volume.get("connection"))
    if volume.get("replication") and volume.get("replication") != "Off":
        state += f" {volume.get('replication')}"
    if volume.get("split_brain"):
        state += ", split brain"
    if volume.get("io_suspended"):
        state += f", I/O suspended ({volume.get('io_suspended')})"
    out_of_sync = volume.get("out_of_sync")
    return (f'<tr data-volume="{_e(volume.get("name"))}"><td class="name">{_e(volume.get("name"))}'
            f'</td><td class="roles">{_e(roles)}</td><td class="disks">{_e(disks)}</td>'
            f'<td class="connection">{_e(state)}</td>'
            f'<td class="oos">{_e("" if out_of_sync is None else int(out_of_sync))}</td>'
            f'<td class="sync">{_e(_sync_text(volume.get("sync")))}</td></tr>')


def _event_item(entry: Mapping[str, Any]) -> str:
    return (f'<li data-event="{_e(entry.get("event"))}">'
            f'<time>{_e(_clock(entry.get("at")))}</time> '
            f'<span class="event">{_e(entry.get("event"))}</span> '
            f'<span class="fields">{_e(_fields(entry.get("fields", {})))}</span></li>')


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#f4f5f7;color:#1d2330}
header{background:#1d2330;color:#fff;padding:12px 20px}
header h1{font-size:18px;margin:0}
header p{margin:4px 0 0;color:#c9cfdb}
#updated.stale{color:#ffb4a8;font-weight:bold}
main{display:grid;grid-template-columns:minmax(0,1fr);gap:14px;padding:14px 20px;max-width:1400px}
section{background:#fff;border-radius:6px;padding:10px 14px;box-shadow:0 1px 2px #0002}
h2{font-size:15px;margin:4px 0 8px}
table{border-collapse:collapse;width:100%}
th,td{text-align:left;padding:4px 6px;border-bottom:1px solid #e3e6ec;vertical-align:top;
overflow-wrap:break-word}
td ul{margin:0;padding-left:16px}
.link{display:inline-block;margin:0 6px 2px 0;padding:0 6px;border-radius:3px;background:#e3e6ec}
.s-up,.s-active{color:#0a6b2f}.link.s-up{background:#d5f2de}
.s-dead{color:#b3261e}.link.s-dead{background:#fbd9d5}
tr.s-dead td.status,tr.s-dead td.name{font-weight:bold}
td.holder{font-weight:bold}
#events{margin:0;padding-left:0;list-style:none;max-height:60vh;overflow:auto}
#events li{padding:2px 0;border-bottom:1px solid #eef0f4}
#events time{color:#5b6475;font-family:monospace}
#events .event{font-weight:bold}
#events li[data-event="peer.dead"] .event,#events li[data-event$="_failed"] .event{color:#b3261e}
.fields{color:#3b4354;font-family:monospace;font-size:12px}
.note{color:#5b6475;overflow-wrap:anywhere}
caption{text-align:left;font-weight:bold;padding:6px 0 2px}
h3{font-size:14px;margin:8px 0 2px}
tr.c-down td.check,tr.c-failed td.check{color:#b3261e;font-weight:bold}
tr.c-up td.check{color:#0a6b2f}
"""

#: the page's script: asks status.json every POLL_MS and redraws from it with text only
SCRIPT = """
"use strict";
(function () {
  const $ = (id) => document.getElementById(id);
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    for (const c of children) node.append(c instanceof Node ? c : String(c));
    return node;
  }
  const clock = (at) => at == null ? "" : new Date(at * 1000).toISOString().slice(11, 19);
  const ago = (s) => s == null ? "never" : s.toFixed(1) + "s ago";
  function state(g) {
    let t = "here " + g.state;
    if (g.peer_state) t += ", there " + g.peer_state;
    else if (g.peer_last_known) t += ", there last " + g.peer_last_known;
    if (g.handing_over) t += ", being handed over";
    if (g.asked_for) t += ", asked for";
    return t;
  }
  function summary(d) {
    const parts = ["phase " + d.phase, d.comm_up ? "communication up" : "communication not up",
                   "fencing " + d.fencing, "auto_failback " + d.auto_failback];
    if (d.timings && d.timings.keepalive != null)
      parts.push("keepalive " + d.timings.keepalive + "s, deadtime " + d.timings.deadtime + "s");
    return parts.join(" \\u00b7 ");
  }
  function syncText(s) {
    if (!s) return "";
    let t = (s.percent || 0).toFixed(1) + "%";
    if (s.rate) t += " at " + (s.rate / 1048576).toFixed(1) + " MiB/s";
    if (s.eta != null) t += ", " + s.eta.toFixed(0) + "s left";
    return t;
  }
  function director(v) {
    const head = el("h3", {"data-director": v.instance}, "director " + v.instance +
      (v.error ? ": " + v.error : " (" + v.role + ", " + v.backend + " backend)"));
    const a = v.announce;
    const routes = a ? [el("div", {"class": "announce"}, "announced to the routers through " +
      a.speaker + (a.draining ? ", draining" : ""), el("ul", {}, ...a.prefixes.map((p) =>
        el("li", {"data-prefix": p.prefix, "class": p.announced ? "up" : "down"}, p.prefix +
          ": " + (p.announced ? "announced" : "withdrawn") + " (" + p.cause + ")"))))] : [];
    return [head, ...routes, ...(v.services || []).map((s) => el("table",
      {"data-service": s.service},
      el("caption", {}, s.service + " " + s.scheduler),
      el("thead", {}, el("tr", {}, ...["real server", "weight", "forward", "check", "said"]
        .map((h) => el("th", {}, h)))),
      el("tbody", {}, ...s.reals.map((r) => el("tr", {"data-real": r.real, "class": "c-" + r.state},
        el("td", {"class": "real"}, r.real),
        el("td", {"class": "weight"}, r.weight == null ? "-" : r.weight),
        el("td", {"class": "forward"}, r.forward), el("td", {"class": "check"}, r.state),
        el("td", {"class": "message"}, r.message))))))];
  }
  function volume(v) {
    if (v.error) return el("tr", {"data-volume": v.name}, el("td", {"class": "name"}, v.name),
      el("td", {"colspan": 5}, v.error));
    let state = v.connection;
    if (v.replication && v.replication !== "Off") state += " " + v.replication;
    if (v.split_brain) state += ", split brain";
    if (v.io_suspended) state += ", I/O suspended (" + v.io_suspended + ")";
    return el("tr", {"data-volume": v.name}, el("td", {"class": "name"}, v.name),
      el("td", {"class": "roles"}, v.role + "/" + v.peer_role),
      el("td", {"class": "disks"}, v.disk + "/" + v.peer_disk),
      el("td", {"class": "connection"}, state),
      el("td", {"class": "oos"}, v.out_of_sync == null ? "" : Math.round(v.out_of_sync)),
      el("td", {"class": "sync"}, syncText(v.sync)));
  }
  function draw(d) {
    $("node").textContent = d.node;
    document.title = "vigil: " + d.node;
    $("summary").textContent = summary(d);
    $("nodes").replaceChildren(...d.nodes.map((n) => el("tr",
      {"data-node": n.name, "class": "s-" + n.status},
      el("td", {"class": "name"}, n.name + (n.self ? " (this node)" : "")),
      el("td", {"class": "type"}, n.type), el("td", {"class": "status"}, n.status),
      el("td", {"class": "heard"}, n.self ? "" : ago(n.last_heard_ago)),
      el("td", {"class": "links"}, ...(n.links || []).map((l) => el("span",
        {"class": "link s-" + l.status, "data-link": l.name}, l.name + " " + l.status))))));
    $("groups").replaceChildren(...d.groups.map((g) => el("tr", {"data-group": g.key},
      el("td", {"class": "key"}, g.key),
      el("td", {"class": "holder"}, g.holder.length ? g.holder.join(" and ") : "nobody"),
      el("td", {"class": "home"}, g.home), el("td", {"class": "state"}, state(g)),
      el("td", {"class": "resources"}, el("ul", {}, ...g.resources.map((r) => el("li", {}, r)))))));
    $("lvs").replaceChildren(...(d.lvs.length ? d.lvs.flatMap(director)
      : [el("p", {"class": "note"}, NO_DIRECTOR)]));
    $("volumes").replaceChildren(...d.volumes.map(volume));
    $("no-volume").textContent = d.volumes.length ? "" : NO_VOLUME;
    $("events").replaceChildren(...d.events.slice().reverse().map((e) => el("li",
      {"data-event": e.event}, el("time", {}, clock(e.at)), " ",
      el("span", {"class": "event"}, e.event), " ",
      el("span", {"class": "fields"},
        Object.entries(e.fields).map(([k, v]) => k + "=" + v).join(" ")))));
  }
  let failing = null;
  async function poll() {
    try {
      const answer = await fetch("status.json", {cache: "no-store"});
      if (!answer.ok) throw new Error("HTTP " + answer.status);
      draw(await answer.json());
      failing = null;
      $("updated").className = "";
      $("updated").textContent = "live \\u00b7 updated " + clock(Date.now() / 1000) + " UTC";
    } catch (err) {
      failing = failing || Date.now();
      $("updated").className = "stale";
      $("updated").textContent = "the daemon does not answer since " +
        clock(failing / 1000) + " UTC (" + err.message + ")";
    }
    setTimeout(poll, POLL_MS);
  }
  setTimeout(poll, POLL_MS);
})();
"""


def render_html(data: Mapping[str, Any]) -> str:
    """The whole page, drawn from `data` (the script keeps it current)."""
    nodes = "".join(_node_row(n) for n in data.get("nodes", []))
    groups = "".join(_group_row(g) for g in data.get("groups", []))
    events = "".join(_event_item(e) for e in reversed(data.get("events", [])))
    daemon = data.get("daemon", {})
    script = (SCRIPT.replace("POLL_MS", str(POLL_MS))
              .replace("NO_DIRECTOR", json.dumps(NO_DIRECTOR))
              .replace("NO_VOLUME", json.dumps(NO_VOLUME)))
    lvs = ("".join(_director_block(v) for v in data.get("lvs", []))
           or f'<p class="note">{_e(NO_DIRECTOR)}</p>')
    volumes = "".join(_volume_row(v) for v in data.get("volumes", []))
    no_volume = "" if data.get("volumes") else NO_VOLUME
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>vigil: {_e(data.get("node"))}</title>
<style>{STYLE}</style></head>
<body>
<header><h1>vigil heartbeat on <span id="node">{_e(data.get("node"))}</span></h1>
<p id="summary">{_e(_summary(data))}</p>
<p id="updated">as of {_e(_clock(data.get("generated")))} UTC</p></header>
<main>
<section><h2>Nodes and links</h2><table><thead><tr><th>node</th><th>type</th><th>status</th>
<th>last heard</th><th>links</th></tr></thead><tbody id="nodes">{nodes}</tbody></table></section>
<section><h2>Groups</h2><table><thead><tr><th>group</th><th>runs on</th><th>home</th>
<th>state</th><th>resources</th></tr></thead><tbody id="groups">{groups}</tbody></table>
</section>
<section><h2>Load balancer</h2><div id="lvs">{lvs}</div></section>
<section><h2>Volumes</h2><table><thead><tr><th>volume</th><th>roles (here/peer)</th>
<th>disks (here/peer)</th><th>connection</th><th>out of sync (bytes)</th><th>sync</th></tr>
</thead><tbody id="volumes">{volumes}</tbody></table>
<p class="note" id="no-volume">{_e(no_volume)}</p></section>
<section><h2>Last events (newest first, UTC)</h2><ol id="events">{events}</ol>
</section>
<section><p class="note">
vigil {_e(daemon.get("version"))}, pid {_e(daemon.get("pid"))}; read-only:
<a href="status.json">status.json</a>, <a href="metrics">metrics</a>.</p></section>
</main>
<script>{script}</script>
</body></html>
"""


__all__ = ["NO_DIRECTOR", "NO_VOLUME", "POLL_MS", "page_data", "render_html", "render_json"]
