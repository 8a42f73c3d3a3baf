"""The volume daemon: one process per resource, started by `vigil volume up`.

It attaches the backing disk and metadata, mounts the FUSE file, attaches a
loop device (direct I/O, autoclear) and creates the configured device node,
then serves the peer link and the control socket until `down` or SIGTERM.
Its state file (`/run/vigil/volume/NAME/state.json`) names the loop device and
its backing file's identity, so a later `down` can clean up after a killed
daemon without touching anyone else's loop device.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pyfuse3

try:
    import pyfuse3.asyncio as pyfuse3_asyncio
except ModuleNotFoundError:  # pyfuse3 < 3.3 (Debian 12's 3.2.1) ships it as a module of its own
    import pyfuse3_asyncio  # type: ignore[no-redef]

from vigil.errors import UsageError, VigilError
from vigil.log import event, setup_logging
from vigil.metrics import MetricsAddress, MetricsServer, parse_address
from vigil.metrics.server import SNAPSHOT_TIMEOUT
from vigil.replication import control, devnode, loopdev
from vigil.replication.blockstore import BackingStore, MetadataStore
from vigil.replication.config import VolumeConfig, load
from vigil.replication.fuse_frontend import DISK_INODE, VolumeFS
from vigil.replication.metadata import MetadataError
from vigil.replication.metrics import VolumeMetrics, metrics_address_for
from vigil.replication.node import Node
from vigil.replication.states import Role, SetupRefused
from vigil.runtime import STOP_SIGNALS, event_loop_runner, on_signals

log = logging.getLogger("vigil.volume")


def state_path(cfg: VolumeConfig) -> Path:
    return cfg.run_dir / "state.json"


def read_state(cfg: VolumeConfig) -> dict[str, Any] | None:
    try:
        return json.loads(state_path(cfg).read_text())
    except (OSError, ValueError):
        return None


def log_path(name: str) -> Path:
    return Path("/var/log/vigil") / f"volume-{name}.log"


def fuse_dir(cfg: VolumeConfig) -> Path:
    return cfg.run_dir / "fuse"


def unmount(path: Path, attempts: int = 20) -> bool:
    """Unmount (lazily if it stays busy: loop releases its file asynchronously)."""
    for attempt in range(attempts):
        if not _is_mountpoint(path):
            return True
        flags = ["-l"] if attempt >= attempts // 2 else []
        subprocess.run(["umount", *flags, str(path)], capture_output=True, check=False)
        if not _is_mountpoint(path):
            return True
        import time

        time.sleep(0.05)
    return not _is_mountpoint(path)


def _is_mountpoint(path: Path) -> bool:
    target = str(path)
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            if line.split()[4] == target:
                return True
    return False


def cleanup_stale(cfg: VolumeConfig) -> list[str]:
    """Remove what a daemon that died left: device node, loop device, FUSE mount."""
    done = []
    state = read_state(cfg)
    if state and state.get("loop"):
        identity = loopdev.LoopIdentity(**state["loop"])
        devnode.remove(state.get("device", cfg.local.device), identity.major, identity.minor)
        if loopdev.is_ours(identity) and loopdev.force_detach(identity):
            done.append(f"detached {identity.name}")
    if unmount(fuse_dir(cfg)) and state:
        done.append("unmounted FUSE")
    with contextlib.suppress(OSError):
        state_path(cfg).unlink()
    with contextlib.suppress(OSError):
        control.socket_path(cfg.run_dir).unlink()
    return done


class Daemon:
    def __init__(self, cfg: VolumeConfig, standalone: bool = False,
                 metrics_address: MetricsAddress | None = None):
        self.cfg = cfg
        self.metrics_address = metrics_address
        self.standalone = standalone
        self.node: Node | None = None
        self.loop_identity: loopdev.LoopIdentity | None = None
        self.loop_fd: int | None = None
        self.stop_event = asyncio.Event()
        self._refreshes: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        cfg = self.cfg
        cfg.run_dir.mkdir(parents=True, exist_ok=True)
        cleanup_stale(cfg)
        backing = BackingStore(cfg.local.disk)
        md = MetadataStore.open(backing, cfg.local.meta_disk, cfg.local.meta_index,
                                known_size_file=cfg.known_size_file)
        node = self.node = Node(cfg, backing, md)
        md.record_place()  # where a later start looks if the disk grows while down
        node.want_connection = not self.standalone
        node.on_resize = self._device_grew
        devnode.private_dev()
        mountpoint = fuse_dir(cfg)
        mountpoint.mkdir(exist_ok=True)
        options = set(pyfuse3.default_options)
        options.add(f"fsname=vigil-{cfg.name}")
        pyfuse3.init(VolumeFS(node), str(mountpoint), options)
        fuse_task = asyncio.ensure_future(pyfuse3.main(min_tasks=4, max_tasks=128))
        aio = asyncio.get_running_loop()
        server = None
        metrics_server: MetricsServer | None = None
        node_task = None
        try:
            self.loop_identity, self.loop_fd = await aio.run_in_executor(
                None, loopdev.attach, str(mountpoint / "disk"))
            devnode.create(cfg.local.device, self.loop_identity.major, self.loop_identity.minor)
            state_path(cfg).write_text(json.dumps({
                "pid": os.getpid(), "device": cfg.local.device,
                "loop": self.loop_identity.to_json(), "fuse": str(mountpoint)}))
            event(log, "volume.up", resource=cfg.name, device=cfg.local.device,
                  loop=self.loop_identity.path, size=node.size)
            server = await control.serve(control.socket_path(cfg.run_dir), self.handle)
            metrics_server = self._start_metrics(aio)
            node_task = asyncio.ensure_future(node.run())
            stopper = asyncio.ensure_future(self.stop_event.wait())
            await asyncio.wait({node_task, stopper, fuse_task},
                               return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
        finally:
            if metrics_server is not None:
                await asyncio.to_thread(metrics_server.close)
            if server is not None:
                await server.close()
            await node.shutdown()
            if node_task is not None:
                node_task.cancel()
                with contextlib.suppress(BaseException):
                    await node_task
            if self.loop_identity is not None:
                devnode.remove(cfg.local.device, self.loop_identity.major,
                               self.loop_identity.minor)
                identity, fd = self.loop_identity, self.loop_fd
                self.loop_fd = None
                # In a thread: detaching makes the kernel close the FUSE file, which
                # this very event loop must answer.
                await aio.run_in_executor(None, loopdev.release, identity, fd)
            with contextlib.suppress(Exception):
                pyfuse3.terminate()
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(fuse_task, 5)
            with contextlib.suppress(Exception):
                pyfuse3.close(unmount=True)
            unmount(mountpoint)
            with contextlib.suppress(OSError):
                state_path(cfg).unlink()
            with contextlib.suppress(OSError):
                control.socket_path(cfg.run_dir).unlink()
            node.backing.close()  # the disk attached now (after detach: nothing)
            node.md.close()
            event(log, "volume.down", resource=cfg.name)

    async def _attach(self) -> str:
        """Open the configured disk and its metadata and give them to the node."""
        node = self.node
        assert node is not None
        if not node.diskless:
            raise SetupRefused("the disk is attached already")
        cfg = self.cfg
        backing = BackingStore(cfg.local.disk)
        md: MetadataStore | None = None
        try:
            md = MetadataStore.open(backing, cfg.local.meta_disk, cfg.local.meta_index,
                                    known_size_file=cfg.known_size_file)
            if node.role is Role.PRIMARY:
                return await node.attach_under_primary(backing, md)
            return node.attach(backing, md)
        except (OSError, MetadataError) as exc:
            raise SetupRefused(f"cannot attach {cfg.local.disk}: {exc}") from None
        finally:
            if node.backing is not backing:
                if md is not None:
                    md.close()
                backing.close()

    def _device_grew(self, size: int) -> None:
        task = asyncio.ensure_future(self._refresh_device(size))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _refresh_device(self, size: int) -> None:
        """The FUSE file and the loop device over it take the volume's new size."""
        try:
            pyfuse3.invalidate_inode(DISK_INODE, attr_only=True)
        except OSError as exc:  # the kernel never looked the file up: nothing cached
            event(log, "volume.fuse_invalidate", resource=self.cfg.name, errno=exc.errno)
        try:
            # In a thread: the kernel asks this very event loop for the file's attributes.
            await asyncio.to_thread(self._loop_takes_new_size)
        except OSError as exc:
            event(log, "volume.device_not_grown", logging.ERROR, resource=self.cfg.name,
                  size=size, reason=str(exc))
            return
        event(log, "volume.device_grown", resource=self.cfg.name, size=size,
              loop=self.loop_identity.path if self.loop_identity else None)

    def _loop_takes_new_size(self) -> None:
        os.stat(fuse_dir(self.cfg) / "disk")
        if self.loop_fd is not None:
            loopdev.set_capacity(self.loop_fd)

    def _start_metrics(self, aio: asyncio.AbstractEventLoop) -> MetricsServer | None:
        if self.metrics_address is None:
            return None
        address = metrics_address_for(self.metrics_address, self.cfg.local.device)

        def snapshot() -> dict[str, Any]:
            """In a scrape thread: the status, taken on the daemon's loop."""
            future = asyncio.run_coroutine_threadsafe(self._status(), aio)
            try:
                return future.result(SNAPSHOT_TIMEOUT)
            except TimeoutError:
                future.cancel()
                raise
        server = MetricsServer(address, VolumeMetrics(snapshot).registry)
        server.start()
        return server

    async def _status(self) -> dict[str, Any]:
        node = self.node
        assert node is not None
        status = node.status()
        status["device"] = self.cfg.local.device
        status["loop"] = self.loop_identity.path if self.loop_identity else None
        return status

    def device_busy(self) -> bool:
        return self.loop_identity is not None and loopdev.in_use(self.loop_identity)

    async def _drop_caches(self) -> None:
        """A promoted node reads through a page cache that may predate the peer's writes.

        In a thread: writing back a dirty page goes through this daemon's FUSE file."""
        if self.loop_fd is None:
            return
        try:
            left = await asyncio.to_thread(loopdev.drop_caches, self.loop_fd)
        except OSError as exc:
            event(log, "volume.cache_drop_failed", resource=self.cfg.name, errno=exc.errno,
                  level=logging.WARNING)
            return
        if left:
            event(log, "volume.stale_cache", resource=self.cfg.name, pages=left,
                  level=logging.WARNING,
                  reason="pages BLKFLSBUF kept were dropped by a block size change")

    async def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        node = self.node
        assert node is not None
        verb = request.get("verb")
        if verb == "status":
            return {"status": await self._status()}
        if verb == "primary":
            message = await node.promote(force=bool(request.get("force")))
            await self._drop_caches()
            return {"message": message}
        if verb == "secondary":
            aio = asyncio.get_running_loop()
            busy = await aio.run_in_executor(None, self.device_busy)
            return {"message": await node.demote(lambda: busy)}
        if verb == "connect":
            return {"message": node.connect(bool(request.get("discard_my_data")))}
        if verb == "disconnect":
            return {"message": await node.disconnect()}
        if verb == "verify":
            return {"message": await node.start_verify()}
        if verb == "invalidate":
            return {"message": await node.invalidate()}
        if verb == "outdate":
            return {"message": node.outdate()}
        if verb == "resume-io":
            return {"message": node.resume_io()}
        if verb == "adjust":
            config = request.get("config")
            if config is not None and not isinstance(config, str):
                raise UsageError("adjust: 'config' must be a path")
            wanted = await asyncio.to_thread(load, self.cfg.name, config)
            message = node.adjust(wanted)
            self.cfg = node.cfg
            for warning in wanted.warnings:
                event(log, "config.warning", logging.WARNING, resource=wanted.name,
                      problem=warning)
            return {"message": message}
        if verb == "invalidate-remote":
            return {"message": node.invalidate_remote()}
        if verb == "new-current-uuid":
            return {"message": node.new_current_uuid(bool(request.get("clear_bitmap")))}
        if verb == "detach":
            return {"message": await node.detach()}
        if verb == "attach":
            return {"message": await self._attach()}
        if verb == "resize":
            return {"message": await node.resize(
                bool(request.get("assume_peer_has_space")))}
        if verb == "pause-sync":
            return {"message": node.pause_sync()}
        if verb == "resume-sync":
            return {"message": node.resume_sync()}
        if verb == "down":
            if node.role is Role.PRIMARY:
                aio = asyncio.get_running_loop()
                busy = await aio.run_in_executor(None, self.device_busy)
                await node.demote(lambda: busy)
            self.stop_event.set()
            return {"message": "going down"}
        raise UsageError(f"unknown control verb {verb!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vigil-volumed")
    parser.add_argument("name")
    parser.add_argument("-c", "--config")
    parser.add_argument("--standalone", action="store_true", help="do not connect at start")
    parser.add_argument("--debug", action="store_true")
    parser.add_argument("--metrics-address", help="serve /metrics at HOST:PORT + the "
                        "device's minor (PORT alone: on loopback)")
    args = parser.parse_args(argv)
    try:
        cfg = load(args.name, args.config)
        metrics = (parse_address(args.metrics_address, "--metrics-address")
                   if args.metrics_address else None)
    except VigilError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return exc.exit_code
    setup_logging(log_path(cfg.name), debug=args.debug, stream=False)
    for warning in cfg.warnings:
        event(log, "config.warning", logging.WARNING, resource=cfg.name, problem=warning)
    pyfuse3_asyncio.enable()
    daemon = Daemon(cfg, standalone=args.standalone, metrics_address=metrics)

    async def runner() -> None:
        aio = asyncio.get_running_loop()
        on_signals(aio, STOP_SIGNALS, lambda _signum: daemon.stop_event.set())
        await daemon.run()

    try:
        event_loop_runner()(runner())
    except VigilError as exc:
        print(f"vigil: {exc}", file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
