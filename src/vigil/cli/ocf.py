"""`vigil ocf AGENT ACTION`: the OCF resource agents ocf:vigil:director, realserver, volume.

Pacemaker runs the shims in contrib/ocf/vigil/ (installed under
/usr/lib/ocf/resource.d/vigil/), which run this with the action; parameters
come in OCF_RESKEY_* variables. Each action runs the vigil command a person
would (`vigil director`, `vigil realserver`, `vigil volume`) and maps its exit
code and status to OCF's (vigil.cluster.ocf holds that map and the metadata).
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from vigil.cli import Subparsers
from vigil.cluster import ocf
from vigil.cluster.ocf import Ocf
from vigil.errors import UsageError, VigilError

#: how long an action may take when Pacemaker does not say (OCF_RESKEY_CRM_meta_timeout)
DEFAULT_TIMEOUT = 60.0
#: what an action keeps for itself out of Pacemaker's timeout
TIMEOUT_MARGIN = 2.0
SCORE_COMMAND_TIMEOUT = 10.0


def register(subparsers: Subparsers) -> None:
    parser = subparsers.add_parser(
        "ocf",
        help="OCF resource agents for Pacemaker: ocf:vigil:director, realserver, volume",
        description=(
            "Run one action of an OCF resource agent, as Pacemaker's shims in "
            "/usr/lib/ocf/resource.d/vigil/ do: parameters come from OCF_RESKEY_* "
            "variables, the exit code is OCF's. AGENT is director (vigil director), "
            "realserver (vigil realserver) or volume (vigil volume, a promotable clone "
            "that sets promotion scores with crm_attribute -p)."
        ),
    )
    parser.add_argument("agent", choices=ocf.AGENTS)
    parser.add_argument("action", help="start, stop, monitor, validate-all, meta-data, ... "
                                       "(volume: promote, demote, notify too)")
    parser.set_defaults(handler=main)


def main(args: argparse.Namespace) -> int:
    spec = ocf.SPECS[args.agent]
    action = args.action
    if action == "meta-data":
        sys.stdout.write(ocf.metadata(spec))
        return Ocf.SUCCESS
    if action in ("usage", "help", "methods"):
        print("\n".join(sorted(spec.action_names)) if action == "methods" else
              f"usage: {args.agent} {{{'|'.join(sorted(spec.action_names))}}}")
        return Ocf.SUCCESS
    if action == "status":
        action = "monitor"
    if action not in spec.action_names:
        _say(args.agent, f"action {action!r} is not implemented")
        return Ocf.ERR_UNIMPLEMENTED
    agent = AGENT_CLASSES[args.agent](os.environ)
    return int(agent.run(action))


def _say(agent: str, text: str) -> None:
    print(f"ocf:vigil:{agent}: {text}", file=sys.stderr)


class AgentRun:
    """One action of one agent: its parameters and the vigil commands it runs."""

    spec: ocf.AgentSpec

    def __init__(self, environ: Mapping[str, str]):
        self.environ = environ
        self.params = ocf.parameters(self.spec, environ)
        self.timeout = _timeout(environ)

    def say(self, text: str) -> None:
        _say(self.spec.name, text)

    def vigil(self, *argv: str) -> subprocess.CompletedProcess[str]:
        """Run this vigil (the same interpreter and package) and relay its output."""
        command = [sys.executable, "-m", "vigil", *argv]
        try:
            done = subprocess.run(command, capture_output=True, text=True, check=False,
                                  timeout=self.timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            self.say(f"`vigil {' '.join(argv)}` did not finish within {self.timeout:g} s")
            return subprocess.CompletedProcess(command, int(Ocf.ERR_GENERIC), "", "")
        if done.stderr.strip():
            sys.stderr.write(done.stderr)
        return done

    def run(self, action: str) -> Ocf:
        absent = ocf.missing(self.spec, self.params)
        if absent:
            self.say(f"parameter {', '.join(absent)} is required")
            return Ocf.ERR_CONFIGURED
        valid = self.validate()
        if action == "validate-all":
            return valid
        if valid is not Ocf.SUCCESS:
            # what is not installed or configured here is not running here either:
            # a probe says so and a stop succeeds, as OCF asks
            if valid is Ocf.ERR_INSTALLED and action in ("monitor", "stop"):
                return Ocf.NOT_RUNNING if action == "monitor" else Ocf.SUCCESS
            return valid
        handler: Callable[[], Ocf] = getattr(self, action.replace("-", "_"))
        return handler()

    def validate(self) -> Ocf:
        return Ocf.SUCCESS

    def relay(self, done: subprocess.CompletedProcess[str]) -> None:
        if done.stdout.strip():
            sys.stdout.write(done.stdout)

    def acted(self, done: subprocess.CompletedProcess[str]) -> Ocf:
        """An action's vigil command relayed, its exit code as OCF's."""
        self.relay(done)
        return ocf.from_action(done.returncode)


def _timeout(environ: Mapping[str, str]) -> float:
    text = environ.get("OCF_RESKEY_CRM_meta_timeout", "")
    try:
        millis = int(text)
    except ValueError:
        return DEFAULT_TIMEOUT
    return max(1.0, millis / 1000 - TIMEOUT_MARGIN)


class Director(AgentRun):
    spec = ocf.DIRECTOR

    def _config(self) -> str:
        from vigil.director.adapter import find_config

        return str(find_config(self.params["configfile"]).resolve())

    def validate(self) -> Ocf:
        from vigil.director.adapter import load_config

        path = Path(self._config())
        if not path.is_file():
            self.say(f"no configuration file {path}")
            return Ocf.ERR_INSTALLED
        try:
            load_config(path)
        except VigilError as exc:
            self.say(str(exc))
            return Ocf.ERR_CONFIGURED
        if self.params["backend"] not in ("auto", "ipvs", "nftables", "userspace"):
            self.say(f"backend {self.params['backend']!r} is not one of auto, ipvs, nftables, "
                     "userspace")
            return Ocf.ERR_CONFIGURED
        return Ocf.SUCCESS

    def _director(self, action: str) -> subprocess.CompletedProcess[str]:
        return self.vigil("director", "--backend", self.params["backend"], "-f",
                          self._config(), action)

    def start(self) -> Ocf:
        done = self._director("start")
        self.relay(done)
        if done.returncode != 0:
            return ocf.from_action(done.returncode)
        return Ocf.SUCCESS if self.monitor(quiet=True) is Ocf.SUCCESS else Ocf.ERR_GENERIC

    def stop(self) -> Ocf:
        return self.acted(self._director("stop"))

    def monitor(self, quiet: bool = False) -> Ocf:
        done = self._director("status")
        if not quiet:
            self.relay(done)
        return ocf.from_lsb_status(done.returncode)


class RealServer(AgentRun):
    spec = ocf.REALSERVER

    def validate(self) -> Ocf:
        for vip in ocf.words(self.params["vip"]):
            try:
                ipaddress.ip_address(vip)
            except ValueError:
                self.say(f"vip {vip!r} is not an IP address")
                return Ocf.ERR_CONFIGURED
        for dev in ocf.words(self.params.get("dev", "")):
            if not Path("/sys/class/net", dev).exists():
                self.say(f"no interface {dev} here")
                return Ocf.ERR_INSTALLED
        return Ocf.SUCCESS

    def _realserver(self, action: str) -> subprocess.CompletedProcess[str]:
        argv = ["realserver", action]
        for vip in ocf.words(self.params["vip"]):
            argv += ["--vip", vip]
        for dev in ocf.words(self.params.get("dev", "")):
            argv += ["--dev", dev]
        return self.vigil(*argv)

    def start(self) -> Ocf:
        return self.acted(self._realserver("start"))

    def stop(self) -> Ocf:
        return self.acted(self._realserver("stop"))

    def monitor(self) -> Ocf:
        done = self._realserver("status")
        self.relay(done)
        return ocf.from_lsb_status(done.returncode)


class Volume(AgentRun):
    spec = ocf.VOLUME

    def _argv(self, verb: str, *extra: str) -> list[str]:
        config = self.params.get("config", "")
        return ["volume", *(["-c", config] if config else []), verb, self.params["volume"],
                *extra]

    def validate(self) -> Ocf:
        from vigil.replication import config as volume_config

        config = self.params.get("config", "") or None
        try:
            volume_config.load(self.params["volume"], config)
        except OSError as exc:
            self.say(f"cannot read the DRBD configuration: {exc}")
            return Ocf.ERR_INSTALLED
        except UsageError as exc:
            # the resource is not defined here, or not for this host (a cluster node that
            # has no disk for it): nothing of it can run here, a probe says not running
            self.say(str(exc))
            return Ocf.ERR_INSTALLED
        except VigilError as exc:
            self.say(str(exc))
            return Ocf.ERR_CONFIGURED
        return Ocf.SUCCESS

    def _view(self) -> ocf.VolumeView | Ocf | None:
        """The volume's state; None when it is not up here; an Ocf code on a failure."""
        done = self.vigil(*self._argv("status", "--json"))
        if done.returncode == ocf.VOLUME_NOT_UP:
            return None
        if done.returncode != 0:
            return Ocf.ERR_GENERIC
        try:
            return ocf.VolumeView.from_status(json.loads(done.stdout))
        except (ValueError, AttributeError) as exc:
            self.say(f"unreadable status: {exc}")
            return Ocf.ERR_GENERIC

    def _score(self, view: ocf.VolumeView | None) -> None:
        score = ocf.promotion_score(view)
        if score is ocf.Keep.KEEP:
            return
        argv = ["crm_attribute", "-p", "-l", "reboot", "-Q"]
        argv += ["-D"] if score is None else ["-v", str(score)]
        what = "removed" if score is None else str(score)
        try:
            done = subprocess.run(argv, capture_output=True, text=True, check=False,
                                  timeout=SCORE_COMMAND_TIMEOUT, stdin=subprocess.DEVNULL)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.say(f"promotion score {what} not set: {exc}")
            return
        if done.returncode != 0:
            detail = (done.stderr.strip() or f"exit {done.returncode}").splitlines()[-1]
            self.say(f"promotion score {what} not set: crm_attribute: {detail}")
        else:
            self.say(f"promotion score {what}")

    def _update(self) -> Ocf:
        view = self._view()
        if isinstance(view, Ocf):
            return view
        self._score(view)
        return ocf.volume_monitor(view)

    def _verb(self, verb: str) -> Ocf:
        return self.acted(self.vigil(*self._argv(verb)))

    def start(self) -> Ocf:
        result = self._verb("up")
        if result is not Ocf.SUCCESS:
            return result
        state = self._update()
        return Ocf.SUCCESS if state in (Ocf.SUCCESS, Ocf.RUNNING_MASTER) else Ocf.ERR_GENERIC

    def stop(self) -> Ocf:
        result = self._verb("down")
        if result is Ocf.SUCCESS:
            self._score(None)
        return result

    def promote(self) -> Ocf:
        result = self._verb("primary")
        state = self._update()
        if result is not Ocf.SUCCESS:
            return result
        return Ocf.SUCCESS if state is Ocf.RUNNING_MASTER else Ocf.ERR_GENERIC

    def demote(self) -> Ocf:
        result = self._verb("secondary")
        state = self._update()
        if result is not Ocf.SUCCESS:
            return result
        return Ocf.SUCCESS if state is Ocf.SUCCESS else Ocf.ERR_GENERIC

    def notify(self) -> Ocf:
        """After any clone operation, the scores follow the new states; notify never fails."""
        if self.environ.get("OCF_RESKEY_CRM_meta_notify_type", "post") == "post":
            self._update()
        return Ocf.SUCCESS

    def monitor(self) -> Ocf:
        return self._update()


AGENT_CLASSES: dict[str, type[AgentRun]] = {
    "director": Director, "realserver": RealServer, "volume": Volume,
}

