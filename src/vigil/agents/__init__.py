"""Resource agents: what starts, stops and monitors each resource of a group.

`BUILTIN_AGENTS` names the agents vigil implements itself (Python, netlink;
the list lives with the haresources model, which resolves names with it);
any other haresources name resolves, as heartbeat does, to a script in
/etc/ha.d/resource.d/, then /etc/init.d/, or to an OCF agent or systemd unit.
`vigil.agents.factory.build_agent(name, args)` builds one;
`vigil.agents.group.Group` starts and stops them in order;
`vigil.agents.monitor` watches them and restarts them in place.
"""

from vigil.config.haresources import BUILTIN_AGENTS

__all__ = ["BUILTIN_AGENTS"]
