"""Build an agent from a haresources resource: `(name, args)` -> `Agent`.

Lookup, as heartbeat's ResourceManager with vigil's additions:
1. a bare IPv4/IPv6 address (`198.51.100.100/24/eth0`) is `IPaddr::<address>`;
2. a built-in agent (`AGENTS`: IPaddr, Filesystem, drbddisk, ...);
3. `ocf:PROVIDER:TYPE` (OCF agent), `systemd:UNIT`, `lsb:NAME` (a script, explicitly);
4. any other name: a script in /etc/ha.d/resource.d/, then /etc/init.d/.
Unknown names raise `AgentConfigError` (status ERR_INSTALLED) with the places looked in.
"""

from __future__ import annotations

import inspect
import ipaddress
from typing import Any

from vigil.agents.base import Agent, AgentConfigError, OcfStatus
from vigil.agents.lsb import LsbScript
from vigil.agents.ocf import OcfAgent
from vigil.agents.options import AgentOptions, AgentPaths
from vigil.agents.registry import ADDRESS_AGENTS, AGENTS
from vigil.agents.systemd import SystemdUnit
from vigil.config.base import ValueProblem
from vigil.config.haresources import BUILTIN_AGENTS, ResourceRef
from vigil.config.haresources import parse_resource as parse_word


def parse_resource(text: str) -> tuple[str, tuple[str, ...]]:
    """One haresources word -> (name, args), read exactly as the config parser reads it."""
    try:
        ref = parse_word(text.strip())
    except ValueProblem as exc:
        raise AgentConfigError(str(exc), OcfStatus.ERR_CONFIGURED) from None
    return ref.name, ref.args


def _construct(cls: type[Agent], name: str, args: tuple[str, ...], options: AgentOptions,
               paths: AgentPaths) -> Agent:
    accepted = inspect.signature(cls.__init__).parameters
    kwargs: dict[str, Any] = {}
    if "options" in accepted:
        kwargs["options"] = options
    if "paths" in accepted:
        kwargs["paths"] = paths
    return cls(name, args, **kwargs)  # type: ignore[call-arg]


def build_agent(name: str, args: tuple[str, ...] = (), *, options: AgentOptions | None = None,
                paths: AgentPaths | None = None) -> Agent:
    """The agent for one resource of a group (raises AgentConfigError when there is none)."""
    options = options or AgentOptions()
    paths = paths or AgentPaths()
    args = tuple(args)
    if not args and _is_bare_ip(name):
        name, args = "IPaddr", (name,)
    if name in ADDRESS_AGENTS and len(args) > 1:
        args = ("::".join(args),)  # an IPv6 address split at its "::"
    if name in AGENTS:
        return _construct(AGENTS[name], name, args, options, paths)
    if name.startswith("ocf:"):
        return OcfAgent(name, args, options=options, paths=paths)
    if name.startswith("systemd:"):
        return SystemdUnit(name, args, options=options, paths=paths)
    return LsbScript(name, args, options=options, paths=paths)


def _is_bare_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("/")[0])
    except ValueError:
        return False
    return True


def builtin_argument_problem(ref: ResourceRef) -> str | None:
    """What is wrong with a built-in agent's arguments, or None when they are fine.

    The agent's own constructor is the judge (it validates without touching
    the system), so `vigil check` and a start agree on what is accepted.
    """
    if ref.name not in BUILTIN_AGENTS:
        return None
    try:
        build_agent(ref.name, ref.args)
    except AgentConfigError as problem:
        return str(problem)
    return None
