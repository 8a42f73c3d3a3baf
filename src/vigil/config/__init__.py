"""Configuration: heartbeat's, ldirectord's and DRBD's files read unchanged, plus vigil.cf.

Each format has its module, all built the same way (see `vigil.config.base`):
``analyze(text, path) -> Parsed[Model]`` collects every problem with file,
line and column; ``parse(text, path) -> Model`` raises `ConfigErrors` (a
`vigil.errors.ConfigError`); ``render(model) -> str`` writes a file that
parses back to an equal model. Models are frozen dataclasses with every
default filled in; times are float seconds.

* `vigil.config.hacf`: ha.cf (`HaCf`, `media_for_host`, `validate_for_host`)
* `vigil.config.authkeys`: authkeys (`AuthKeys`, `check_mode`)
* `vigil.config.haresources`: haresources (`HaResources`, `ResourceGroup`,
  `ResourceRef`, `ResourceResolver`)
* `vigil.config.ldirectord`: ldirectord.cf (`LdirectordConfig`, `VirtualService`)
* `vigil.config.drbd`: DRBD resource files (`DrbdConfig`, `Resource`)
* `vigil.config.extension`: /etc/ha.d/vigil.cf (`ExtensionConfig`, `policy_for`)
* `vigil.config.fence_agents`: where a fence agent named in vigil.cf is installed

The whole directory, checked as a set (with the agents' own argument checks),
is `vigil.cluster`.
"""
