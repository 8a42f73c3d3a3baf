"""The cluster's configuration as a whole: every file of a directory loaded and
checked together, as a start would meet it.

`loader` (`ClusterConfig`, `check`, `load`) parses each file with its
`vigil.config` module, then checks what only the set can tell, including the
built-in agents' arguments (judged by the agents themselves) and the fence
agents' presence; `diff` compares two `ClusterConfig`s for a reload; `pacemaker` translates
one into a Pacemaker configuration and a corosync.conf (`vigil export`). It sits
above `vigil.config` and `vigil.agents`, below the daemons and the CLI.
"""
