"""From the configuration file to the director's runtime model.

`load_config(path)` is the one entry point the daemon uses: the project's
ldirectord.cf parser (`vigil.config.ldirectord`) reads the file, and
`from_ldirectord` turns its model (names as written, globals folded into each
virtual) into `DirectorConfig`: host names resolved, IPv4 ranges expanded,
LVS's port rule applied (only NAT may change the port), checks and policy
knobs laid out for the engine and the health policy.
"""

from __future__ import annotations

from pathlib import Path

from vigil.config import ldirectord as cf
from vigil.config.ldirectord_keys import CheckKeys, ServiceKeys, keys_of
from vigil.config.resolve import Resolver, SystemResolver
from vigil.director.settings import CheckSpec, DirectorConfig, RealSpec, ServiceConfig
from vigil.errors import ConfigError, Location
from vigil.lvs.table import Forward, Protocol, RealServer, ServiceKey, VirtualService

#: Where ldirectord looks for a config given by name.
SEARCH_DIRECTORIES = ("/etc/ha.d", "/etc/ha.d/conf")


def find_config(name: str | None) -> Path:
    """ldirectord's lookup: /etc/ha.d/NAME, /etc/ha.d/conf/NAME, then NAME as given."""
    name = name or cf.DEFAULT_NAME
    if "/" not in name:
        for directory in SEARCH_DIRECTORIES:
            candidate = Path(directory) / name
            if candidate.is_file():
                return candidate
    return Path(name)


def load_config(path: str | Path, resolver: Resolver | None = None) -> DirectorConfig:
    """Read and convert one ldirectord.cf; `ConfigError` (file:line) when it is wrong."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(Location(str(path)), f"cannot read: {exc.strerror}") from None
    resolver = resolver or SystemResolver()
    return from_ldirectord(cf.parse(text, str(path), resolver), resolver)


def from_ldirectord(model: cf.LdirectordConfig, resolver: Resolver) -> DirectorConfig:
    services = []
    for virtual in model.virtuals:
        if virtual.service == "oracle" and virtual.checktype in (cf.CheckType.NEGOTIATE,
                                                                 cf.CheckType.COMBINED):
            raise ConfigError(virtual.location or Location(model.path),
                              f"virtual service {virtual.ident}: vigil has no oracle negotiate "
                              "check (ldirectord's needs DBD::Oracle); use checktype=connect "
                              "or an external check")
        try:
            services.append(_service(virtual, resolver))
        except (cf.ResolutionError, ValueError) as exc:
            where = virtual.location or Location(model.path)
            raise ConfigError(where, str(exc)) from None
    return DirectorConfig(
        services=tuple(services),
        source=model.path,
        autoreload=model.autoreload,
        callback=model.callback,
        logfile=model.logfile,
        maintenancedir=model.maintenancedir,
        readdquiescent=model.readdquiescent,
        emailalertfrom=model.emailalertfrom,
        supervised=model.supervised,
    )


def _key(virtual: cf.VirtualService, resolver: Resolver) -> ServiceKey:
    if virtual.protocol == "fwm" or virtual.fwmark is not None:
        return ServiceKey.fwm(virtual.fwmark or 0, family=virtual.family)
    address = cf.resolve_virtual(virtual, resolver) or ""
    return ServiceKey(Protocol(virtual.protocol), address, virtual.port or 0)


def _path(request: str | None) -> str | None:
    if request is None or request.startswith("/") or "://" in request:
        return request
    return "/" + request


def _service(virtual: cf.VirtualService, resolver: Resolver) -> ServiceConfig:
    key = _key(virtual, resolver)
    reals = []
    for real in cf.expand_reals(virtual, resolver):
        forward = Forward(real.forwarding.value)
        port = real.port
        if key.protocol is not Protocol.FWM and (forward is not Forward.MASQ or not port):
            port = key.port  # LVS: only NAT can send to another port
        reals.append(RealSpec(
            RealServer(real.address, port, weight=real.weight, forward=forward,
                       upper=real.upper or 0, lower=real.lower or 0),
            request=_path(real.request), receive=real.receive))
    fallback = None
    if virtual.fallback is not None:
        fb = virtual.fallback
        address = resolver.addresses(fb.address, fb.family)
        if not address:
            raise cf.ResolutionError(f"fallback server {fb.address} does not resolve")
        fallback = RealServer(address[0], fb.port or key.port, weight=1,
                              forward=Forward(fb.forwarding.value))
    check = CheckSpec(**{**keys_of(virtual, CheckKeys),
                         "request": _path(virtual.request) or "/",
                         "httpmethod": virtual.httpmethod.upper()})
    flags = tuple(f for f in (virtual.schedflags or "").replace(",", " ").split() if f)
    emails = tuple(a.strip() for a in (virtual.emailalert or "").split(",") if a.strip())
    return ServiceConfig(
        service=VirtualService(key, scheduler=virtual.scheduler, persistent=virtual.persistent,
                               netmask=virtual.netmask, sched_flags=flags, ops=virtual.ops),
        reals=tuple(reals),
        check=check,
        fallback=fallback,
        emailalert=emails,
        **keys_of(virtual, ServiceKeys),
    )
