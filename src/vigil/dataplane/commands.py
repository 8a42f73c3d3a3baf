"""Two renderings -> the smallest nftables JSON transaction that turns one into the other.

The order inside the transaction is what the kernel needs to accept it as one
batch: declarations first (counters, sets, maps, chains), then rules (a chain
whose rules change is flushed and refilled), then map elements (only the keys
that change: a changed slot is deleted and re-added in the same batch, so no
packet ever finds it missing), and last the removals (chains are emptied
before anything they point to goes). An identical rendering gives no command.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from vigil.dataplane.ruleset import (
    Chain,
    ElementKey,
    FlowSet,
    Ruleset,
    TableObjects,
    VerdictMap,
)

Command = dict[str, Any]


def _where(table: TableObjects) -> dict[str, str]:
    return {"family": table.family, "table": table.name}


def _element_key(key: ElementKey) -> Any:
    return {"concat": list(key)} if isinstance(key, tuple) else key


def _verdict(chain: str) -> Any:
    return {"goto": {"target": chain}}


def _chain_decl(table: TableObjects, chain: Chain) -> Command:
    body: dict[str, Any] = {**_where(table), "name": chain.name}
    if chain.hook is not None:
        body.update(type=chain.hook.type, hook=chain.hook.hook, prio=chain.hook.priority,
                    policy="accept")
        if chain.hook.device is not None:
            body["dev"] = chain.hook.device
    return {"add": {"chain": body}}


def _map_decl(table: TableObjects, vmap: VerdictMap) -> Command:
    key = list(vmap.key) if isinstance(vmap.key, tuple) else vmap.key
    return {"add": {"map": {**_where(table), "name": vmap.name, "type": key, "map": "verdict"}}}


def _set_decl(table: TableObjects, flows: FlowSet) -> Command:
    key = list(flows.key) if isinstance(flows.key, tuple) else flows.key
    return {"add": {"set": {**_where(table), "name": flows.name, "type": key,
                            "flags": ["timeout"], "timeout": flows.timeout,
                            "size": flows.size}}}


def _rules(table: TableObjects, chain: Chain) -> list[Command]:
    out = []
    for rule in chain.rules:
        body: dict[str, Any] = {**_where(table), "chain": chain.name, "expr": rule.json()}
        if rule.comment is not None:
            body["comment"] = rule.comment
        out.append({"add": {"rule": body}})
    return out


def _add_elements(table: TableObjects, name: str, items: Iterable[tuple[ElementKey, str]]
                  ) -> list[Command]:
    elem = [[_element_key(k), _verdict(v)] for k, v in items]
    if not elem:
        return []
    return [{"add": {"element": {**_where(table), "name": name, "elem": elem}}}]


def _delete_elements(table: TableObjects, name: str, keys: Iterable[ElementKey]
                     ) -> list[Command]:
    elem = [_element_key(k) for k in keys]
    if not elem:
        return []
    return [{"delete": {"element": {**_where(table), "name": name, "elem": elem}}}]


def _order(key: ElementKey) -> tuple[int, Any]:
    return (1, tuple(str(k) for k in key)) if isinstance(key, tuple) else (0, key)


def _sorted(items: Iterable[tuple[ElementKey, str]]) -> list[tuple[ElementKey, str]]:
    return sorted(items, key=lambda kv: _order(kv[0]))


def create(table: TableObjects) -> list[Command]:
    """Every command that builds `table` from nothing."""
    out: list[Command] = [{"add": {"table": {"family": table.family, "name": table.name}}}]
    out += [{"add": {"counter": {**_where(table), "name": n}}} for n in sorted(table.counters)]
    out += [_set_decl(table, s) for _, s in sorted(table.sets.items())]
    out += [_map_decl(table, m) for _, m in sorted(table.maps.items())]
    chains = sorted(table.chains.values(), key=lambda c: (c.hook is not None, c.name))
    out += [_chain_decl(table, c) for c in chains]
    for chain in chains:
        out += _rules(table, chain)
    for _, vmap in sorted(table.maps.items()):
        out += _add_elements(table, vmap.name, _sorted(vmap.elements.items()))
    return out


def update(old: TableObjects, new: TableObjects) -> list[Command]:
    """The commands that turn `old` into `new` (same family and name)."""
    _check_declarations(old, new)
    out: list[Command] = []
    where = _where(new)
    # Declarations that are new.
    for name in sorted(new.counters - old.counters):
        out.append({"add": {"counter": {**where, "name": name}}})
    out += [_set_decl(new, s) for n, s in sorted(new.sets.items()) if n not in old.sets]
    out += [_map_decl(new, m) for n, m in sorted(new.maps.items()) if n not in old.maps]
    added_chains = [c for n, c in sorted(new.chains.items()) if n not in old.chains]
    out += [_chain_decl(new, c) for c in added_chains]
    # Rules: new chains filled, changed chains flushed and refilled.
    for chain in added_chains:
        out += _rules(new, chain)
    for name, chain in sorted(new.chains.items()):
        if name in old.chains and old.chains[name].rules != chain.rules:
            out.append({"flush": {"chain": {**where, "name": name}}})
            out += _rules(new, chain)
    # Elements.
    for name, vmap in sorted(new.maps.items()):
        if name not in old.maps:
            out += _add_elements(new, name, _sorted(vmap.elements.items()))
        else:
            out += _element_changes(new, name, old.maps[name].elements, vmap.elements)
    # Removals: empty the chains that go, then drop maps, sets, counters, then chains.
    gone_chains = sorted(set(old.chains) - set(new.chains))
    for name in gone_chains:
        if old.chains[name].rules:
            out.append({"flush": {"chain": {**where, "name": name}}})
    for name in sorted(set(old.maps) - set(new.maps)):
        out.append({"delete": {"map": {**where, "name": name}}})
    for name in sorted(set(old.sets) - set(new.sets)):
        out.append({"delete": {"set": {**where, "name": name}}})
    for name in gone_chains:
        out.append({"delete": {"chain": {**where, "name": name}}})
    for name in sorted(old.counters - new.counters):
        out.append({"delete": {"counter": {**where, "name": name}}})
    return out


def _check_declarations(old: TableObjects, new: TableObjects) -> None:
    """Names carry every declared property, so a name never changes its declaration."""
    for kind in ("sets", "maps"):
        before, after = getattr(old, kind), getattr(new, kind)
        for name in set(before) & set(after):
            if (kind == "sets" and before[name] != after[name]) or \
                    (kind == "maps" and before[name].key != after[name].key):
                raise AssertionError(f"{name}: same name, different declaration")
    for name in set(old.chains) & set(new.chains):
        if old.chains[name].hook != new.chains[name].hook:
            raise AssertionError(f"{name}: same name, different hook")


def _element_changes(table: TableObjects, name: str, before: Mapping[ElementKey, str],
                     after: Mapping[ElementKey, str]) -> list[Command]:
    gone = [k for k in before if k not in after]
    changed = [k for k, v in after.items() if k in before and before[k] != v]
    fresh = [k for k in after if k not in before]
    if not (gone or changed or fresh):
        return []
    if after and len(gone) + len(changed) > len(after) // 2:
        where = _where(table)
        return [{"flush": {"map": {**where, "name": name}}},
                *_add_elements(table, name, _sorted(after.items()))]
    return [*_delete_elements(table, name, sorted(gone + changed, key=_order)),
            *_add_elements(table, name, _sorted((k, after[k]) for k in changed + fresh))]


def transaction(old: Ruleset | None, new: Ruleset) -> list[Command]:
    """All the commands, for both tables, as one batch."""
    out: list[Command] = []
    before = old or Ruleset()
    for attr in ("netdev", "inet"):
        was: TableObjects | None = getattr(before, attr)
        now: TableObjects | None = getattr(new, attr)
        if now is None and was is not None:
            out.append({"delete": {"table": {"family": was.family, "name": was.name}}})
        elif now is not None and was is None:
            out += create(now)
        elif now is not None and was is not None:
            out += update(was, now)
    return out


def replace_all(new: Ruleset, families: Iterable[str] = ("netdev", "inet")) -> list[Command]:
    """Build `new` whatever the kernel holds under vigil's table names (one batch)."""
    out: list[Command] = []
    for family in families:
        out.append({"add": {"table": {"family": family, "name": "vigil"}}})
        out.append({"delete": {"table": {"family": family, "name": "vigil"}}})
    for table in new.tables():
        out += create(table)
    return out
