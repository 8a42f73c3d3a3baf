"""The kernel data path as pure data: desired table -> plan -> nftables JSON.

`plan` turns a director table (plus what the host looks like: devices,
routes) into a `Plan`, keeping the slot transitions that protect established
connections; `ruleset` renders a plan into nftables objects; `commands`
diffs two renderings into the smallest JSON transaction; `adopt` reads a
plan back from what the kernel lists. No I/O here: the backend
(`vigil.director.backends.nftables`) is the shell around it.
"""
