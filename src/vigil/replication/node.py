"""One replicated resource on this node: the asyncio shell around the pure cores.

It owns the local disk and metadata, the role, and the link to the peer. The
front end (FUSE) calls `read`, `write` and `flush`; the control socket calls
the admin verbs. Decisions come from the pure modules (`generations.compare`,
`split_brain.resolve`, `completion.is_complete`, the rate and link timers);
this module does the I/O they ask for and logs each state change as one
`event key=value` line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from vigil.clock import Clock, MonotonicClock
from vigil.errors import VigilError
from vigil.log import event
from vigil.replication import auth, messages, wire
from vigil.replication.activity_log import ActivityLog, AlChange
from vigil.replication.adjust import plan as adjust_plan
from vigil.replication.admission import DIGEST_BYTES, VERIFY_CHUNK_BLOCKS, Handling, View, admit
from vigil.replication.bitmap import Bitmap, block_range
from vigil.replication.blockstore import BackingStore, DetachedDisk, MetadataStore, device_size
from vigil.replication.completion import Progress, Protocol, Transfer, TransferLog, is_complete
from vigil.replication.config import VolumeConfig
from vigil.replication.digests import digester
from vigil.replication.fencing import FenceOutcome, WriteFreeze, fence_outcome
from vigil.replication.generations import Generations, Sync, plan_new_current
from vigil.replication.geometry import BLOCK_SIZE, BLOCKS_PER_EXTENT, extents_of
from vigil.replication.handshake import Facts, Rules, decide
from vigil.replication.link import LinkClosed, PeerProtocol, connect, listen
from vigil.replication.metadata import MdFlag, Superblock
from vigil.replication.rate import ResyncPacer
from vigil.replication.resize import Sizes, local_growth, negotiate
from vigil.replication.states import (
    CONN_TRANSITIONS,
    REPL_TRANSITIONS,
    Conn,
    Disk,
    Repl,
    Role,
    SetupRefused,
    StateChangeRefused,
    check,
)
from vigil.replication.timers import ConnectTimer, Liveness, PingTimer
from vigil.replication.wfc import WaitKind, kind_at_attach
from vigil.tasks import cancel_and_wait

log = logging.getLogger("vigil.volume")

PROTOCOL_VERSION = 1
RESYNC_CHUNK_BLOCKS = 256  # 1 MiB per resync message: a fourth of the per-message work of 256 KiB
VERIFY_WINDOW = 8
APP_IO_WINDOW = 0.5  # application I/O seen within this many seconds slows the resync
BIG_WRITE = 64 * 1024
#: beyond ping-timeout, how long a promotion waits for the pinger to judge its probe
PROBE_GRACE = 1.0
#: how often a paused resync looks whether it may go on
PAUSED_SYNC_POLL = 0.05


class LinkLost(Exception):
    """The peer link broke (or the peer said goodbye)."""


class Session:
    """One established TCP connection to the peer."""

    def __init__(self, link: PeerProtocol):
        self.link = link
        self.peer: dict[str, Any] = {}
        self.tlog = TransferLog()
        self.waiting: dict[int, tuple[asyncio.Future[None], Progress]] = {}
        self.flushes: dict[int, asyncio.Future[None]] = {}
        self.flush_seq = 0
        #: flush seq -> the last write seq it covers (see TransferLog.barrier)
        self.flush_covers: dict[int, int] = {}
        self.bye: dict[str, Any] | None = None
        self.sent_at: dict[int, float] = {}
        #: FLUSH requests from the peer not yet answered
        self.peer_flushes = 0
        #: closed by this node to handshake again (forced promotion, invalidate): the peer
        #: is not lost, so nothing is fenced
        self.rehandshake = False
        #: the link's liveness timer, once the handshake is done
        self.ping: PingTimer | None = None
        #: the highest sequence number of the peer's replicated writes written here
        self.last_written = 0
        #: a diskless primary's reads the peer has not answered, by sequence number
        self.reads: dict[int, asyncio.Future[bytes]] = {}
        self.read_seq = 0
        #: a diskless primary's writes: they exist only on the peer, so only its
        #: WRITE_ACK completes them and anything else fails them
        self.remote_only: set[int] = set()

    @property
    def batches_resync(self) -> bool:
        """The peer takes small resync ranges together (RS_BATCH, answered by RS_ACKS)."""
        return wire.FEATURE_RS_BATCH in messages.features(self.peer)

    @property
    def closed(self) -> bool:
        return self.link.closed

    def send(self, message: wire.Message) -> None:
        self.link.write(message.encode())

    def send_soon(self, message: wire.Message) -> None:
        """A small message that may go together with the others of this event-loop turn."""
        self.link.write_soon(message.encode())

    def send_data(self, message: wire.Data) -> None:
        if len(message.payload) >= BIG_WRITE:
            self.link.write(message.head())
            self.link.write(message.payload)
        else:
            self.link.write(message.encode())

    async def drain(self) -> None:
        await self.link.drain()

    async def read(self) -> wire.Message:
        return await self.link.read()

    def close(self) -> None:
        self.link.close()


class ResyncBatch:
    """Small resync ranges gathered for one RS_BATCH."""

    #: bytes of data after which a batch goes out
    LIMIT = 256 * 1024

    def __init__(self) -> None:
        self.ranges: list[tuple[int, int]] = []
        self.parts: list[bytes] = []
        self.size = 0

    def add(self, offset: int, data: bytes) -> None:
        self.ranges.append((offset, len(data)))
        self.parts.append(data)
        self.size += len(data)

    @property
    def full(self) -> bool:
        return len(self.ranges) >= wire.MAX_BATCH_RANGES or self.size >= self.LIMIT

    def send(self, session: Session) -> None:
        session.send_soon(wire.Batch(wire.T.RS_BATCH, self.ranges, b"".join(self.parts)))
        self.ranges, self.parts, self.size = [], [], 0


class Node:
    def __init__(self, config: VolumeConfig, backing: BackingStore, md: MetadataStore,
                 clock: Clock | None = None, hostname: str | None = None,
                 fresh_id: Callable[[], int] | None = None):
        self.cfg = config
        self.backing = backing
        self.md = md
        self.clock = clock or MonotonicClock()
        self.hostname = hostname or os.uname().nodename
        self._fresh_id = fresh_id or (lambda: secrets.randbits(64) | 1)
        self.sb: Superblock = md.read_superblock()
        #: what the volume exports: the superblock's size, at most the disk's capacity
        self.size = self.sb.data_size
        self.bitmap: Bitmap = md.read_bitmap(self.size)
        self.crashed_primary = self.sb.crashed_primary
        #: which startup timeout a boot-time wait for the peer uses (DRBD decides at attach)
        self.wait_kind, self.wait_why = kind_at_attach(self.sb.flags)
        hot = md.read_activity_log()
        if self.crashed_primary and hot:
            for extent in hot:
                self.bitmap.set_range(extent * BLOCKS_PER_EXTENT,
                                      (extent + 1) * BLOCKS_PER_EXTENT)
            md.write_bitmap(self.bitmap)
            event(log, "volume.crash_recovery", resource=config.name, extents=len(hot),
                  blocks=self.bitmap.count)
        if hot:
            md.write_activity_log([])
        self.al = ActivityLog(max(7, config.al_extents))
        #: `resize` asked for: the next handshake grows both nodes to the smaller capacity
        self._grow_request = False
        self._resize_waiter: asyncio.Future[str] | None = None
        self.on_resize: Callable[[int], None] | None = None
        if md.stale:  # the backing disk grew while the volume was down
            self.refresh_capacity()
        self.role = Role.SECONDARY
        self.conn = Conn.STANDALONE
        self.repl = Repl.OFF
        self.peer_role = Role.UNKNOWN
        self.peer_disk = Disk.UNKNOWN
        self.uptodate = False  # known up to date in this life (connected in sync, or promoted)
        self.want_connection = True
        self.discard_my_data = False
        self.session: Session | None = None
        self._wake = asyncio.Event()
        self._io_open = asyncio.Event()
        self._io_open.set()
        #: all I/O waits here while a primary attaches a disk (the link is made anew)
        self._io_pause = asyncio.Event()
        self._io_pause.set()
        #: a primary that is the sync target (its disk attached under it): the blocks its
        #: application wrote since the resync began, whose older copies from the resync
        #: are not written, and the lock that orders its writes with their edge reads
        self._fresh: Bitmap | None = None
        self._target_writes = asyncio.Lock()
        #: fencing resource-and-stonith: whether writes wait, why, and whose fence froze them
        self.write_freeze = WriteFreeze()
        #: connections made in this life: a fence outcome from an older one is moot
        self._connections = 0
        self.last_fence: dict[str, Any] | None = None
        #: drbdadm pause-sync: this node's flag (kept until resume-sync) and the peer's
        #: (said in its STATE; forgotten with the link); a resync moves while neither is set
        self.sync_paused_here = False
        self.sync_paused_peer = False
        self._stopping = False
        self.last_app_io = -1e9
        self.split_brain: str = ""
        self.last_reason = ""
        #: DRBD's counters (ns, nr, dw, dr, al, bm: bytes and updates) and vigil's own:
        #: acked_writes / ack_wait_us (peer acknowledgements of replicated writes and the
        #: time they took, in microseconds), split_brains, verifies (finished here)
        self.stats = {"ns": 0, "nr": 0, "dw": 0, "dr": 0, "al": 0, "bm": 0, "writes": 0,
                      "resync_blocks": 0, "resync_messages": 0, "acked_writes": 0,
                      "ack_wait_us": 0, "split_brains": 0, "verifies": 0,
                      "resync_same_blocks": 0, "integrity_failures": 0, "remote_reads": 0}
        self._sync: dict[str, Any] = {}
        self._verify: dict[str, Any] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._accepted: asyncio.Queue[PeerProtocol] = asyncio.Queue()
        self._last_refusal = -1e9
        self._server: asyncio.AbstractServer | None = None
        self.on_role_change: Callable[[Role], None] | None = None
        #: the disk was let go of after an I/O error (on-io-error detach): whatever it
        #: holds is not trusted when it is attached again
        self.disk_failed = False

    # ------------------------------------------------------------------ derived state
    @property
    def diskless(self) -> bool:
        return isinstance(self.backing, DetachedDisk)

    @property
    def disk(self) -> Disk:
        if self.diskless:
            return Disk.DISKLESS
        flags = self.sb.flags
        if flags & MdFlag.SYNC_TARGET or not flags & MdFlag.CONSISTENT:
            return Disk.INCONSISTENT
        if flags & MdFlag.OUTDATED:
            return Disk.OUTDATED
        if self.uptodate or self.role is Role.PRIMARY:
            return Disk.UP_TO_DATE
        return Disk.CONSISTENT

    def _set_conn(self, new: Conn, reason: str) -> None:
        check(CONN_TRANSITIONS, self.conn, new)
        if new is not self.conn:
            event(log, "volume.connection", resource=self.cfg.name, old=self.conn.value,
                  new=new.value, reason=reason)
            self.conn = new
            self.last_reason = reason

    def _set_repl(self, new: Repl, reason: str) -> None:
        check(REPL_TRANSITIONS, self.repl, new)
        if new is not self.repl:
            event(log, "volume.replication", resource=self.cfg.name, old=self.repl.value,
                  new=new.value, reason=reason)
            self.repl = new
            self.last_reason = reason

    def _write_sb(self, sb: Superblock) -> None:
        self.sb = sb
        self.md.write_superblock(sb)
        self.stats["bm"] += 1

    @property
    def primary_target(self) -> bool:
        """A primary whose disk was attached under it and is not in sync yet: blocks
        still marked are read from the peer, and every write goes to both."""
        return self.role is Role.PRIMARY and not self.diskless and \
            self.disk is Disk.INCONSISTENT

    @property
    def replicating(self) -> bool:
        """Writes go to the peer too (not while it is diskless: they are marked instead)."""
        return (self.session is not None and self.repl not in (Repl.OFF, Repl.WF_BITMAP)
                and self.peer_disk is not Disk.DISKLESS)

    # ------------------------------------------------------------------ block I/O (front end)
    async def read(self, offset: int, length: int) -> bytes:
        if self.role is not Role.PRIMARY:
            raise OSError(errno.EIO, "secondary: refusing I/O")
        if not self._io_pause.is_set():
            await self._io_pause.wait()
        if offset >= self.size:
            return b""
        length = min(length, self.size - offset)
        self.stats["dr"] += length
        if self.diskless:
            return await self._remote_read(offset, length)
        if self.primary_target and self.bitmap.any_in(*block_range(offset, length)):
            return await self._remote_read(offset, length)  # not here yet: the peer's
        try:
            return self.backing.read(offset, length)
        except OSError as exc:
            if not self._local_io_error("read", offset, exc):
                raise
        return await self._remote_read(offset, length)

    def _peer_has_good_data(self) -> bool:
        """Connected, in sync, and the peer's disk UpToDate: I/O can go through it."""
        return (self.session is not None and self.repl is Repl.ESTABLISHED
                and self.peer_disk is Disk.UP_TO_DATE)

    def _good_peer(self) -> Session:
        """The session through which a diskless primary (or a primary sync target)
        reaches good data, or EIO (DRBD's on-no-data-accessible io-error)."""
        session = self.session
        resyncing_here = self.repl is Repl.SYNC_TARGET and not self.diskless
        if session is None or not (self._peer_has_good_data() or (
                resyncing_here and self.peer_disk is Disk.UP_TO_DATE)):
            raise OSError(errno.EIO, "no access to good data: diskless, and the peer is "
                          f"{self.peer_disk.value if session else 'not connected'}")
        return session

    async def _remote_read(self, offset: int, length: int) -> bytes:
        """Read through the peer's disk (a diskless primary)."""
        session = self._good_peer()
        session.read_seq += 1
        seq = session.read_seq
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        session.reads[seq] = future
        session.send(wire.ReadRequest(wire.T.READ_REQUEST, seq, offset, length))
        self.stats["remote_reads"] += 1
        data = await future
        if len(data) != length:
            raise OSError(errno.EIO, f"remote read at {offset}: {len(data)} of {length} bytes")
        return data

    def _local_io_error(self, what: str, offset: int, exc: OSError) -> bool:
        """A read or write of the backing disk failed: on-io-error decides. True if the
        node is now diskless and the I/O goes on through the peer (detach)."""
        event(log, "volume.io_error", logging.ERROR, resource=self.cfg.name, op=what,
              offset=offset, error=exc.strerror or str(exc), policy=self.cfg.on_io_error)
        if self.cfg.on_io_error == "call-local-io-error":
            self._run_handler("local-io-error")
            return False
        if self.cfg.on_io_error != "detach" or self.diskless:
            return False
        self._let_go_of_disk(f"I/O error on {what} (on-io-error detach)", failed=True)
        return self.role is Role.PRIMARY and self._peer_has_good_data()

    async def write(self, offset: int, data: bytes) -> int:
        if self.role is not Role.PRIMARY:
            raise OSError(errno.EIO, "secondary: refusing I/O")
        if offset + len(data) > self.size:
            raise OSError(errno.ENOSPC, "write past the end of the volume")
        if not self._io_pause.is_set():
            await self._io_pause.wait()
        if not self._io_open.is_set():
            await self._io_open.wait()
        self.last_app_io = self.clock.now()
        if self.diskless:
            return await self._remote_write(offset, data)
        if self.primary_target:
            return await self._write_as_target(offset, data)
        extents = extents_of(offset, len(data))
        change = self.al.begin(extents)
        if change is not None:
            try:
                self._commit_al(change)
            except OSError as exc:
                self.al.end(extents)
                if not self._local_io_error("activity log", offset, exc):
                    raise
                return await self._remote_write(offset, data)
        try:
            session = self.session if self.replicating else None
            future: asyncio.Future[None] | None = None
            if session is not None:
                transfer, future = self._send_write(session, offset, data)
                progress = transfer.progress
            else:
                start, stop = block_range(offset, len(data))
                self.bitmap.set_range(start, stop)
            try:
                self.backing.write(offset, data)
            except OSError as exc:
                if not self._local_io_error("write", offset, exc) or future is None \
                        or session is None:
                    raise
                # sent already: the peer's copy is the only one now, and the peer must
                # resync it to this disk some day (its metadata may not have said so)
                session.send(wire.Range(wire.T.OUT_OF_SYNC, offset, len(data)))
                session.remote_only.add(transfer.seq)
                progress.local_done = True
                await future
                return len(data)
            self.stats["dw"] += len(data)
            self.stats["writes"] += 1
            if session is not None and future is not None:
                progress.local_done = True
                if self.cfg.protocol is Protocol.A and session.link.buffered() > (8 << 20):
                    with contextlib.suppress(ConnectionError):
                        await session.drain()
                if not is_complete(self.cfg.protocol, progress):
                    await future
            return len(data)
        finally:
            self.al.end(extents)

    async def _remote_write(self, offset: int, data: bytes) -> int:
        """A diskless primary's write: on the peer's disk only, complete on its WRITE_ACK."""
        session = self._good_peer()
        transfer, future = self._send_write(session, offset, data, remote_only=True)
        transfer.progress.local_done = True
        self.stats["writes"] += 1
        await future
        return len(data)

    def _send_write(self, session: Session, offset: int, data: bytes,
                    remote_only: bool = False) -> tuple[Transfer, asyncio.Future[None]]:
        """Send one replicated write; the future completes as the protocol says (a
        `remote_only` write: on the peer's WRITE_ACK, and fails if the link is lost)."""
        transfer = session.tlog.start(offset, len(data))
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        session.waiting[transfer.seq] = (future, transfer.progress)
        session.sent_at[transfer.seq] = self.clock.now()
        if remote_only:
            session.remote_only.add(transfer.seq)
        session.send_data(wire.Data(wire.T.DATA, transfer.seq, offset, data,
                                    digest=self._integrity_digest(data)))
        transfer.progress.queued = True
        self.stats["ns"] += len(data)
        return transfer, future

    async def _write_as_target(self, offset: int, data: bytes) -> int:
        """A primary sync target's write: on both disks, complete on the peer's WRITE_ACK
        (this disk is not yet a copy to trust). A block only partly written and still
        marked here is completed with the peer's copy first, so the whole block written
        here is current: it is unmarked, and the resync's older copy of it is skipped.
        One at a time: an edge read must not pass another write to the same block."""
        async with self._target_writes:
            session = self._good_peer()
            start, stop = block_range(offset, len(data))
            low, high = start * BLOCK_SIZE, stop * BLOCK_SIZE
            head = tail = b""
            if offset > low:
                head = (await self._block_as_target(start))[:offset - low]
            if offset + len(data) < high:
                last = (stop - 1) * BLOCK_SIZE
                tail = (await self._block_as_target(stop - 1))[offset + len(data) - last:]
            if not self.primary_target:  # the disk went, or the resync ended, meanwhile
                return await self.write(offset, data)
            session = self._good_peer()
            extents = extents_of(low, high - low)
            change = self.al.begin(extents)
            try:
                if change is not None:
                    try:
                        self._commit_al(change)
                    except OSError as exc:
                        if not self._local_io_error("activity log", low, exc):
                            raise
                        return await self._remote_write(offset, data)
                transfer, future = self._send_write(session, offset, data, remote_only=True)
                try:
                    self.backing.write(low, head + data + tail)
                except OSError as exc:
                    if not self._local_io_error("write", low, exc):
                        raise
                else:
                    self.bitmap.clear_range(start, stop)
                    if self._fresh is not None:
                        self._fresh.set_range(start, stop)
                    self.stats["dw"] += high - low
                transfer.progress.local_done = True
                self.stats["writes"] += 1
                await future
            finally:
                self.al.end(extents)
        return len(data)

    async def _block_as_target(self, block: int) -> bytes:
        """One block's current content on a primary sync target: the peer's if marked."""
        if self.bitmap.test(block):
            return await self._remote_read(block * BLOCK_SIZE, BLOCK_SIZE)
        return self.backing.read(block * BLOCK_SIZE, BLOCK_SIZE)

    async def flush(self) -> None:
        """A barrier: the local disk and (protocol B/C) the peer's disk have everything."""
        if not self._io_pause.is_set():
            await self._io_pause.wait()
        loop = asyncio.get_running_loop()
        if self.diskless and self.role is Role.PRIMARY:  # everything is on the peer
            session = self._good_peer()
            await self._peer_flush(session, self._ask_peer_flush(session))
            return
        local = loop.run_in_executor(None, self.backing.flush)
        session = self.session if self.replicating else None
        # a primary sync target's writes count on the peer's copy: its flush is waited for
        if session is not None and (self.cfg.protocol is not Protocol.A or self.primary_target):
            peers = self._peer_flush(session, self._ask_peer_flush(session))
            await self._local_flush(local)
            await peers
        elif session is not None:  # protocol A: the peer flushes too, nobody waits...
            peers = self._peer_flush(session, self._ask_peer_flush(session))
            if not await self._local_flush(local):  # ...unless its flush is all there is
                await peers
        else:
            await self._local_flush(local)

    def _peer_flush(self, session: Session, seq: int) -> asyncio.Future[None]:
        """The future that the peer's answer to FLUSH `seq` completes."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        session.flushes[seq] = future
        return future

    async def _local_flush(self, local: asyncio.Future[None]) -> bool:
        """Wait for the local disk's flush: True if it flushed; False if it failed and
        the node went diskless with a good peer (whose flush then counts); else EIO."""
        try:
            await local
        except OSError as exc:
            if not self._local_io_error("flush", 0, exc):
                raise
            return False
        return True

    def _ask_peer_flush(self, session: Session) -> int:
        """Send FLUSH; its ack makes every write sent before it durable on the peer."""
        session.flush_seq += 1
        seq = session.flush_seq
        session.flush_covers[seq] = session.tlog.barrier()
        session.send(wire.Ack(wire.T.FLUSH, seq))
        return seq

    def _commit_al(self, change: AlChange) -> None:
        """Make the log (and the bitmap pages of evicted extents) durable before writing.

        Synchronous on purpose: no other write can slip into a new extent between
        the log update and its own data write.
        """
        if change.evicted and self.bitmap.dirty_pages:
            self.md.write_bitmap(self.bitmap)
        self.md.write_activity_log(self.al.extents())
        self.stats["al"] += 1

    # ------------------------------------------------------------------ admin verbs
    async def promote(self, force: bool = False) -> str:
        if self.role is Role.PRIMARY:
            return "already primary"
        self._need_disk("be primary")
        if self.peer_role is Role.PRIMARY and not self.cfg.allow_two_primaries:
            await self._probe_primary_peer()
            if self.peer_role is Role.PRIMARY:
                raise StateChangeRefused("the peer is primary (allow-two-primaries is off)")
        if self.repl is Repl.SYNC_TARGET and not force:
            raise StateChangeRefused("resync in progress: this node is the sync target")
        disk = self.disk
        if disk is Disk.OUTDATED and not force:
            raise StateChangeRefused("refusing to be primary while outdated (use --force)")
        if disk is Disk.INCONSISTENT and not force:
            raise StateChangeRefused(
                "need access to UpToDate data: the local disk is inconsistent (use --force)")
        if disk is Disk.CONSISTENT and self.session is None and self.cfg.fencing != "dont-care":
            outcome = await self._fence_peer(self._connections)
            if not outcome.peer_outdated:
                raise StateChangeRefused(
                    f"fence-peer did not outdate the peer ({outcome.why}); use --force")
        sb = self.sb
        if force and disk in (Disk.INCONSISTENT, Disk.OUTDATED):
            sb = replace(sb, flags=(sb.flags | MdFlag.CONSISTENT)
                         & ~(MdFlag.OUTDATED | MdFlag.SYNC_TARGET))
            if self.session is None or sb.generations.current == 0:
                sb = replace(sb, generations=sb.generations.new_current(self._fresh_id()))
        elif self.session is None:
            sb = replace(sb, generations=sb.generations.new_current(self._fresh_id()))
        sb = replace(sb, flags=sb.flags | MdFlag.PRIMARY, primary_since=time.time())
        self._write_sb(sb)
        self.role = Role.PRIMARY
        self.uptodate = True
        if force and self.session is not None and self.peer_disk is not Disk.UP_TO_DATE:
            # A forced promotion made new data: reconnect so the handshake syncs the peer.
            self.session.rehandshake = True
            self.session.close()
        event(log, "volume.role", resource=self.cfg.name, role="Primary", force=force,
              generation=f"{sb.generations.current:016X}")
        self._send_state()
        if self.on_role_change:
            self.on_role_change(Role.PRIMARY)
        return "promoted"

    async def demote(self, device_busy: Callable[[], bool] | None = None) -> str:
        if self.role is Role.SECONDARY:
            return "already secondary"
        if device_busy is not None and device_busy():
            raise StateChangeRefused("device is held open by someone (mounted?)")
        self.role = Role.SECONDARY
        await asyncio.get_running_loop().run_in_executor(None, self.backing.flush)
        if self.bitmap.dirty_pages:
            self.md.write_bitmap(self.bitmap)
        change = self.al.clear()
        if change is not None:
            self.md.write_activity_log(self.al.extents())
        self._write_sb(self.sb.with_flag(MdFlag.PRIMARY, False))
        self.crashed_primary = False
        event(log, "volume.role", resource=self.cfg.name, role="Secondary")
        self._send_state()
        if self.on_role_change:
            self.on_role_change(Role.SECONDARY)
        return "demoted"

    def connect(self, discard_my_data: bool = False) -> str:
        self._need_disk("connect")
        self.discard_my_data = discard_my_data
        if self.conn is Conn.STANDALONE:
            self.want_connection = True
            self._set_conn(Conn.CONNECTING, "connect requested")
            self._wake.set()
            return "connecting"
        return f"already {self.conn.value}"

    async def _settle_peer(self, session: Session, timeout: float = 5.0) -> None:
        """Before a clean goodbye: the peer flushes what it acknowledged, so leaving does
        not mark those writes out of sync (a lost link still does)."""
        if session.closed or not session.tlog.unflushed:
            return
        seq = self._ask_peer_flush(session)
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        session.flushes[seq] = future
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.shield(future), timeout)

    async def disconnect(self) -> str:
        self.want_connection = False
        session = self.session
        if session is not None:
            await self._settle_peer(session)
            # the peer's writes acknowledged here are on this disk once it is flushed: say
            # so, and the peer need not mark them out of sync (nor resync them later)
            through = session.last_written
            await asyncio.get_running_loop().run_in_executor(None, self.backing.flush)
            bye: dict[str, Any] = {"outdate_you": self.role is Role.PRIMARY}
            if through:
                bye["flushed_through"] = through
            session.send(wire.Control(wire.T.BYE, bye))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.drain(), 2)
            session.close()
            for _ in range(200):
                if self.session is None:
                    break
                await asyncio.sleep(0.01)
        if self.conn is not Conn.STANDALONE:
            self._set_conn(Conn.STANDALONE, "disconnect requested")
        self._wake.set()
        return "disconnected"

    def outdate(self) -> str:
        self._need_disk("outdate")
        if self.role is Role.PRIMARY:
            raise StateChangeRefused("a primary cannot be outdated")
        if self.disk is Disk.INCONSISTENT:
            return "inconsistent already"
        self._write_sb(self.sb.with_flag(MdFlag.OUTDATED))
        self.uptodate = False
        event(log, "volume.outdated", resource=self.cfg.name)
        return "outdated"

    async def invalidate(self) -> str:
        """Throw away the local data: a full resync from the peer follows."""
        self._need_disk("invalidate")
        if self.role is Role.PRIMARY:
            raise StateChangeRefused("cannot invalidate a primary")
        self.bitmap.set_all()
        self.md.write_bitmap(self.bitmap, everything=True)
        self._write_sb(self.sb.with_flag(MdFlag.SYNC_TARGET))
        self.uptodate = False
        event(log, "volume.invalidated", resource=self.cfg.name, blocks=self.bitmap.count)
        if self.session is not None:  # reconnect: the handshake makes this node the target
            self.session.rehandshake = True
            self.session.close()
        return "invalidated: full resync from the peer"

    def invalidate_remote(self) -> str:
        """drbdadm invalidate-remote: the peer's data is thrown away and rewritten from here."""
        self._need_disk("invalidate the peer")
        if self.peer_disk is Disk.DISKLESS:
            raise StateChangeRefused("the peer is diskless: attach its disk first")
        if self.session is None or self.repl is not Repl.ESTABLISHED:
            raise StateChangeRefused("not connected and in sync: nothing to rewrite the peer "
                                     "from")
        if self.disk is not Disk.UP_TO_DATE:
            raise StateChangeRefused(f"this node's data is {self.disk.value}, not UpToDate")
        if self.peer_role is Role.PRIMARY:
            raise StateChangeRefused("cannot invalidate a primary peer")
        self.session.send(wire.Control(wire.T.STATE, {"invalidate": True}))
        event(log, "volume.invalidate_remote", resource=self.cfg.name)
        return "the peer invalidates its data: full resync to it"

    def new_current_uuid(self, clear_bitmap: bool = False) -> str:
        """drbdadm new-current-uuid [--clear-bitmap], as DRBD 8.4 (`plan_new_current`).

        Disconnected: a new current generation (the old one becomes the bitmap
        generation), and with --clear-bitmap an empty bitmap; disk states stay.
        Connected to a peer with both sides' metadata fresh, --clear-bitmap skips the
        initial sync: both nodes take the new generation and become UpToDate.
        """
        self._need_disk("start a new generation")
        session = self.session
        peer = None
        if session is not None and "generations" in session.peer:
            peer = Generations.from_list(session.peer["generations"])
        plan = plan_new_current(session is not None, self.repl is Repl.ESTABLISHED,
                                self.sb.generations, peer, clear_bitmap)
        if plan.refusal:
            raise SetupRefused(plan.refusal)
        generations = self.sb.generations.new_current_uuid(self._fresh_id())
        if clear_bitmap:
            self.bitmap.clear_all()
            self.md.write_bitmap(self.bitmap, everything=True)
        if plan.skip_initial_sync:
            assert session is not None
            generations = replace(generations, bitmap=0)
            self._write_sb(replace(self.sb, generations=generations,
                                   flags=(self.sb.flags | MdFlag.CONSISTENT)
                                   & ~(MdFlag.OUTDATED | MdFlag.SYNC_TARGET)))
            self.uptodate = True
            self.peer_disk = Disk.UP_TO_DATE
            session.send(wire.Control(wire.T.STATE, {
                "skip_initial_sync": generations.current, "role": self.role.value,
                "disk": self.disk.value}))
            event(log, "volume.new_current_uuid", resource=self.cfg.name,
                  generations=str(generations), skip_initial_sync=True)
            return (f"new current generation {generations.current:016X}: initial sync "
                    "skipped, both UpToDate")
        self._write_sb(replace(self.sb, generations=generations))
        event(log, "volume.new_current_uuid", resource=self.cfg.name,
              generations=str(generations), clear_bitmap=clear_bitmap)
        return (f"new current generation {generations.current:016X}"
                + (", bitmap cleared" if clear_bitmap else ""))

    def _skip_initial_sync_for_peer(self, generation: int) -> None:
        """The peer ran new-current-uuid --clear-bitmap: take its generation and be
        UpToDate, if this node's metadata is fresh too (as DRBD's receive_uuids)."""
        if (self.session is None or self.repl is not Repl.ESTABLISHED
                or self.role is Role.PRIMARY or self.sb.generations.current != 0):
            event(log, "volume.skip_initial_sync_refused", logging.WARNING,
                  resource=self.cfg.name, reason=f"asked by the peer while {self.role.value}, "
                  f"{self.repl.value}, generations {self.sb.generations}")
            self._send_state()  # the peer learns this disk's real state
            return
        self.bitmap.clear_all()
        self.md.write_bitmap(self.bitmap, everything=True)
        generations = Generations(generation, 0, self.sb.generations.history)
        self._write_sb(replace(self.sb, generations=generations,
                               flags=(self.sb.flags | MdFlag.CONSISTENT)
                               & ~(MdFlag.OUTDATED | MdFlag.SYNC_TARGET)))
        self.uptodate = True
        self.peer_disk = Disk.UP_TO_DATE
        event(log, "volume.new_current_uuid", resource=self.cfg.name,
              generations=str(generations), skip_initial_sync=True, by="peer")
        self._send_state()

    def adjust(self, wanted: VolumeConfig) -> str:
        """drbdadm adjust: run what the resource file now says (see `adjust.plan`)."""
        changes = adjust_plan(self.cfg, wanted)
        if changes.restart:
            raise StateChangeRefused("only down and up can change "
                                     + "; ".join(changes.restart))
        self.cfg = wanted
        for change in (*changes.live, *changes.reconnect):
            event(log, "volume.adjusted", resource=self.cfg.name, change=change)
        said = "; ".join((*changes.live, *changes.reconnect))
        if changes.reconnect and self.session is not None:
            self.session.rehandshake = True  # the handshake negotiates these again
            self.session.close()
            return f"adjusted, reconnecting: {said}"
        # the file says connected: a StandAlone node connects, as drbdadm adjust does
        # (a peer that refused the old parameters while it was adjusted, a disconnect)
        connecting = self.conn is Conn.STANDALONE
        if connecting:
            self.connect(False)
        if changes.empty:
            return "no changes, connecting" if connecting else "no changes"
        return f"adjusted{', connecting' if connecting else ''}: {said}"

    async def start_verify(self) -> str:
        self._need_disk("verify")
        session = self.session
        if session is None or self.repl is not Repl.ESTABLISHED:
            raise StateChangeRefused("verify needs an established connection without resync")
        if self.peer_disk is Disk.DISKLESS:
            raise StateChangeRefused("the peer is diskless: nothing to compare with")
        self._set_repl(Repl.VERIFY_S, "verify requested")
        session.send(wire.Control(wire.T.STATE, {"verify": "start"}))
        self._spawn(self._verify_source(session))
        return "verify started"

    # ------------------------------------------------------------------ status
    def status(self) -> dict[str, Any]:
        now = self.clock.now()
        out: dict[str, Any] = {
            "name": self.cfg.name,
            "host": self.hostname,
            "role": self.role.value,
            "peer_role": self.peer_role.value,
            "connection": self.conn.value,
            "replication": self.repl.value,
            "disk": self.disk.value,
            "peer_disk": self.peer_disk.value,
            "protocol": self.cfg.protocol.value,
            "size": self.size,
            # what the backing disk holds (more than size once it grew, until resize)
            "capacity": self.md.capacity,
            "out_of_sync": self.bitmap.bytes_marked,
            # writes the peer acknowledged that no flush of its disk covers yet
            "peer_unflushed": self.session.tlog.unflushed if self.session else 0,
            "generations": str(self.sb.generations),
            "split_brain": self.split_brain,
            # DRBD's "suspended:fencing": writes wait (None while they flow)
            "io_suspended": self.io_frozen_reason,
            # DRBD's resync-suspended: "user" (pause-sync here), "peer", or None
            "sync_paused": self.sync_paused if self._sync and not self._sync.get("finished")
            else None,
            # the last fence-peer handler's exit code and what it meant (None: none ran)
            "last_fence": self.last_fence,
            "reason": self.last_reason,
            "wait_kind": self.wait_kind.value,
            "wait_why": self.wait_why,
            "stats": dict(self.stats),
        }
        if self._sync and self.repl in (Repl.SYNC_SOURCE, Repl.SYNC_TARGET):
            total = max(1, self._sync["total"])
            left = self.bitmap.count
            done = max(0, total - left)
            elapsed = max(1e-6, now - self._sync["started"])
            rate = done * BLOCK_SIZE / elapsed
            out["sync"] = {
                "percent": round(100.0 * done / total, 1),
                "total_bytes": total * BLOCK_SIZE,
                "left_bytes": left * BLOCK_SIZE,
                "rate": rate,
                "eta": (left * BLOCK_SIZE / rate) if rate > 0 else None,
            }
        if self._sync.get("finished"):
            out["last_sync"] = {k: self._sync[k] for k in ("blocks", "seconds", "direction")
                                if k in self._sync}
        if self._verify:
            out["verify"] = dict(self._verify)
        return out

    # ------------------------------------------------------------------ the link
    async def run(self) -> None:
        """Keep the peer link up (unless told otherwise) until `stop`."""
        timer = ConnectTimer(self.cfg.link, self.clock.now())
        if self.want_connection and self.conn is Conn.STANDALONE:
            self._set_conn(Conn.CONNECTING, "up")
        if not self.cfg.i_connect:
            self._server = await listen(self.cfg.local.address, self.cfg.local.port,
                                        self._accepted, peer=self.cfg.peer.address,
                                        refused=self._refused, buffers=lambda: self.cfg.buffers)
        self._spawn(self._metadata_flusher())
        while not self._stopping:
            timer.settings = self.cfg.link  # `adjust` may have changed connect-int
            if not self.want_connection:
                self._wake.clear()
                await self._wake.wait()
                timer.lost(self.clock.now())
                continue
            now = self.clock.now()
            if self.cfg.i_connect and not timer.due(now):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timer.next_deadline() - now)
                continue
            link = await self._establish()
            if link is None:
                timer.failed(self.clock.now())
                continue
            session = Session(link)
            established = False
            try:
                await self._serve(session)
            except (LinkLost, LinkClosed, ConnectionError, TimeoutError, wire.ProtocolError,
                    OSError) as exc:
                event(log, "volume.link_lost", resource=self.cfg.name,
                      reason=f"{type(exc).__name__}: {exc}")
            except Exception as exc:  # whatever the peer made us do: drop it, keep the device
                event(log, "volume.link_lost", level=logging.ERROR, resource=self.cfg.name,
                      reason=f"fault on the peer link: {type(exc).__name__}: {str(exc)[:200]}")
            finally:
                established = self.session is session
                self._session_ended(session)
            if established:
                timer.lost(self.clock.now())  # it worked a moment ago: retry at once
            else:
                timer.failed(self.clock.now())

    def _refused(self, address: str, why: str) -> None:
        now = self.clock.now()
        if now - self._last_refusal >= 1.0:  # a flood is one line a second
            self._last_refusal = now
            event(log, "volume.connection_refused", level=logging.WARNING,
                  resource=self.cfg.name, address=address, reason=why)

    def _usable(self, link: PeerProtocol) -> bool:
        if link.closed:
            return False
        if self.session is not None or not self.want_connection or self._stopping:
            event(log, "volume.accept_refused", resource=self.cfg.name,
                  busy=self.session is not None, wanted=self.want_connection)
            link.close()
            return False
        return True

    async def _establish(self) -> PeerProtocol | None:
        if self.cfg.i_connect:
            try:
                return await connect(self.cfg.peer.address, self.cfg.peer.port,
                                     self.cfg.local.address, max(1.0, self.cfg.link.timeout),
                                     self.cfg.buffers)
            except (OSError, TimeoutError):
                return None
        # The accepting side listens all the time: no retry timer, so it can never
        # fall out of phase with the connecting side's retries.
        while True:
            while not self._accepted.empty():
                link = self._accepted.get_nowait()
                if self._usable(link):
                    return link
            waiter = asyncio.ensure_future(self._accepted.get())
            self._wake.clear()
            woke = asyncio.ensure_future(self._wake.wait())
            done, _ = await asyncio.wait({waiter, woke}, return_when=asyncio.FIRST_COMPLETED)
            woke.cancel()
            if waiter in done:
                link = waiter.result()
                if self._usable(link):
                    return link
                continue
            await cancel_and_wait([waiter])
            if waiter.done() and not waiter.cancelled():
                self._accepted.put_nowait(waiter.result())
            if not self.want_connection or self._stopping:
                return None

    def stop(self) -> None:
        self._stopping = True
        self.want_connection = False
        if self.session is not None:
            self.session.close()
        self._wake.set()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()

    def _spawn(self, coroutine: Any) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    # ------------------------------------------------------------------ handshake
    def _my_params(self) -> dict[str, Any]:
        return {
            "generations": self.sb.generations.to_list(),
            "crashed_primary": self.crashed_primary,
            "primary": self.role is Role.PRIMARY,
            "dirty": self.bitmap.count,
            "size": self.size,
            "capacity": self.md.capacity,
            "grow": self._grow_request,
            "disk": self.disk.value,
            "inconsistent": self.disk is Disk.INCONSISTENT,
            "primary_since": self.sb.primary_since,
            "discard_my_data": self.discard_my_data,
            "protocol": self.cfg.protocol.value,
            "two_primaries": self.cfg.allow_two_primaries,
            "host": self.hostname,
            "verify_alg": self.cfg.verify_alg,
            "csums_alg": self.cfg.csums_alg,
            "integrity_alg": self.cfg.integrity_alg,
            "features": [wire.FEATURE_RS_BATCH],
        }

    async def _expect(self, session: Session, kind: wire.T) -> wire.Message:
        message = await asyncio.wait_for(session.read(), timeout=max(2.0, self.cfg.link.timeout))
        if message.type is wire.T.BYE and kind is not wire.T.BYE:
            assert isinstance(message, wire.Control)
            session.bye = message.fields
            raise LinkLost(f"peer refused: {message.fields.get('reason', '')}")
        if message.type is not kind:
            raise wire.ProtocolError(f"expected {kind.name}, got {message.type.name}")
        return message

    async def _authenticate(self, session: Session) -> None:
        role = b"C" if self.cfg.i_connect else b"A"
        peer_role = b"A" if self.cfg.i_connect else b"C"
        secret = self.cfg.shared_secret.encode()
        challenge = secrets.token_bytes(auth.CHALLENGE_SIZE) if secret else b""
        session.send(wire.Control(wire.T.HELLO, {
            "version": PROTOCOL_VERSION, "resource": self.cfg.name,
            "challenge": challenge.hex(), "alg": self.cfg.cram_hmac_alg if secret else ""}))
        hello = await self._expect(session, wire.T.HELLO)
        assert isinstance(hello, wire.Control)
        resource = messages.hello_resource(hello.fields)
        if resource != self.cfg.name:
            raise wire.ProtocolError(f"peer serves resource {resource[:64]!r}")
        their_challenge = messages.challenge(hello.fields)
        if not secret:
            if their_challenge:
                raise LinkLost("the peer wants authentication but no shared-secret is set")
            session.link.max_body = wire.MAX_BODY
            return
        if not auth.acceptable_challenge(challenge, their_challenge):
            raise LinkLost("authentication failed: unacceptable challenge")
        session.send(wire.Blob(wire.T.AUTH, auth.response(
            secret, their_challenge, self.cfg.cram_hmac_alg, role)))
        answer = await self._expect(session, wire.T.AUTH)
        assert isinstance(answer, wire.Blob)
        if not auth.verify(secret, challenge, answer.payload, self.cfg.cram_hmac_alg, peer_role):
            event(log, "volume.auth_failed", resource=self.cfg.name, level=logging.WARNING)
            raise LinkLost("authentication failed: wrong shared-secret on the peer")
        session.link.max_body = wire.MAX_BODY

    async def _serve(self, session: Session) -> None:
        await self._authenticate(session)
        self.refresh_capacity()
        session.send(wire.Control(wire.T.PARAMS, self._my_params()))
        params = await self._expect(session, wire.T.PARAMS)
        assert isinstance(params, wire.Control)
        peer = session.peer = messages.params(params.fields)
        self._agree_on_size(peer)
        if peer.get("protocol") != self.cfg.protocol.value:
            self.want_connection = False
            raise LinkLost(f"protocol mismatch: {peer.get('protocol')} on the peer, "
                           f"{self.cfg.protocol.value} here")
        different = self._different_algorithms(peer)
        if different:
            self.want_connection = False  # as DRBD: StandAlone until the files agree
            self.last_reason = f"{different}: refusing to connect"
            event(log, "volume.refused", resource=self.cfg.name, reason=self.last_reason,
                  level=logging.ERROR)
            raise LinkLost(self.last_reason)
        self.session = session
        self._connections += 1
        self._set_conn(Conn.CONNECTED, f"connected to {peer.get('host')}")
        if self.write_freeze.frozen:
            self.resume_io("the peer is connected again")
        self.wait_kind, self.wait_why = WaitKind.DEFAULT, "connected since attach"
        # Recorded for the next boot; the peer tells its own disk state from now on.
        connected = (self.sb.flags | MdFlag.CONNECTED) & ~MdFlag.PEER_OUTDATED
        if connected != self.sb.flags:
            self._write_sb(replace(self.sb, flags=connected))
        self.peer_role = Role.PRIMARY if peer.get("primary") else Role.SECONDARY
        self.peer_disk = Disk(peer.get("disk", "DUnknown"))
        sync = self._decide(peer)
        if sync is None:  # refused: split brain or unrelated data
            self.want_connection = False
            session.send(wire.Control(wire.T.BYE, {"reason": self.last_reason}))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(session.drain(), 2)
            raise LinkLost(self.last_reason)
        self.discard_my_data = False
        ping = session.ping = PingTimer(self.cfg.link, self.clock.now())
        if sync in (Sync.NONE, Sync.BOTH_FRESH):
            self._set_repl(Repl.ESTABLISHED, sync.value)
            self._in_sync_with_peer(sync)
        else:
            await self._start_resync(session, sync)
        self._spawn(self._pinger(session, ping))
        await self._receive(session, ping)

    def _agree_on_size(self, peer: dict[str, Any]) -> None:
        """Both nodes take the size `resize.negotiate` gives, growing if it says so."""
        theirs = Sizes(peer["size"], peer.get("capacity", peer["size"]), bool(peer.get("grow")))
        mine = Sizes(self.size, self.md.capacity, self._grow_request)
        agreement = negotiate(mine, theirs)
        self._grow_request = False
        if agreement.refusal:
            self.want_connection = False
            self.last_reason = agreement.refusal
            event(log, "volume.refused", resource=self.cfg.name, reason=agreement.refusal,
                  level=logging.ERROR)
            self._resized(agreement.refusal)
            raise LinkLost(agreement.refusal)
        old = self.size
        if agreement.size > old:
            self._grow_to(agreement.size, f"agreed with {peer.get('host')}")
            self._resized(f"grown from {old} to {self.size} bytes on both nodes; the new "
                          f"{self.size - old} bytes resync from the primary")
        else:
            self._resized(f"nothing to grow: {self.size} bytes is all both backing disks "
                          f"hold (here {self.md.capacity}, the peer "
                          f"{theirs.capacity})")

    def _resized(self, outcome: str) -> None:
        waiter, self._resize_waiter = self._resize_waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(outcome)

    def refresh_capacity(self, strict: bool = False) -> None:
        """Read the backing disk's size again; if it grew, place the metadata for it.

        A disk that grew too little to move the metadata is logged (raised if `strict`).
        """
        if self.diskless:
            return
        self.backing.size = device_size(self.backing.fd)
        new = self.md.grown_layout(self.backing.size)
        if new is None:
            return
        old = self.md.capacity
        try:
            self.md.relocate(new, self.bitmap, self.sb, self.al.extents())
        except VigilError as exc:
            if strict:
                raise StateChangeRefused(str(exc)) from None
            event(log, "volume.metadata_not_moved", logging.WARNING, resource=self.cfg.name,
                  reason=str(exc))
            return
        event(log, "volume.capacity", resource=self.cfg.name, old=old,
              new=self.md.capacity, backing=self.backing.size)

    def _grow_to(self, size: int, reason: str) -> None:
        """Export `size` bytes from now on; the new blocks are out of sync until resynced."""
        old_blocks, blocks = self.size // BLOCK_SIZE, size // BLOCK_SIZE
        bitmap = Bitmap(blocks, self.bitmap.to_bytes())
        bitmap.set_range(old_blocks, blocks)
        self.bitmap = bitmap
        self.md.write_bitmap(bitmap, everything=True)
        old = self.size
        self._write_sb(replace(self.sb, data_size=size))
        self.size = size
        event(log, "volume.resized", resource=self.cfg.name, old=old, new=size, reason=reason)
        if self.on_resize is not None:
            self.on_resize(size)

    def _need_disk(self, what: str) -> None:
        if self.diskless:
            raise StateChangeRefused(f"cannot {what}: no disk attached (diskless; attach "
                                     "first)")

    async def detach(self, settle: float = 10.0) -> str:
        """drbdadm detach: let go of the backing disk and stay connected, diskless.

        Whatever was written here is on disk with the metadata first. A secondary's
        peer then marks every write in its bitmap (a write already on its way is
        refused with NEG_ACK, which marks it too), so `attach` resyncs just those
        blocks. A primary goes on serving I/O through its peer, which must be
        connected and UpToDate; the peer then marks what it writes for it.
        """
        if self.diskless:
            return "diskless already"
        if self.role is Role.PRIMARY and not self._peer_has_good_data():
            raise StateChangeRefused("a primary detaches only while connected to an UpToDate "
                                     "peer (its I/O then goes through the peer)")
        if self.peer_role is Role.PRIMARY and self.peer_disk is Disk.DISKLESS:
            raise StateChangeRefused("the peer is a diskless primary: its data is on this "
                                     "disk only")
        if self.repl in (Repl.SYNC_SOURCE, Repl.SYNC_TARGET, Repl.WF_BITMAP, Repl.VERIFY_S,
                         Repl.VERIFY_T):
            raise StateChangeRefused(f"cannot detach while {self.repl.value}")
        session = self.session
        deadline = self.clock.now() + settle
        while session is not None and session.peer_flushes and self.clock.now() < deadline:
            await asyncio.sleep(0.01)  # a flush for the peer still uses the disk
        backing, md = self.backing, self.md
        await asyncio.get_running_loop().run_in_executor(None, backing.flush)
        md.write_bitmap(self.bitmap)
        if self.role is Role.PRIMARY:  # the disk is no primary's any more: no crash recovery
            md.write_activity_log([])
            md.write_superblock(self.sb.with_flag(MdFlag.PRIMARY, False))
        else:
            md.write_superblock(self.sb)
        self._let_go_of_disk("detach")
        return "detached: diskless" + (", still connected" if session is not None else "") \
            + (", I/O through the peer" if self.role is Role.PRIMARY else "")

    def _let_go_of_disk(self, reason: str, failed: bool = False) -> None:
        """Diskless from now on (detach, or on-io-error detach: `failed`, the metadata
        is written if the disk still takes it)."""
        backing, md = self.backing, self.md
        if failed:
            self.disk_failed = True  # Inconsistent when attached again, until resynced
            with contextlib.suppress(OSError):
                md.write_bitmap(self.bitmap)
                md.write_superblock(self.sb.with_flag(MdFlag.CONSISTENT, False))
        placeholder = DetachedDisk(backing.size, md.capacity)
        self.backing, self.md = placeholder, placeholder  # type: ignore[assignment]
        with contextlib.suppress(OSError):
            backing.close()
        with contextlib.suppress(OSError):
            md.close()
        self.uptodate = False
        session = self.session
        if session is None:  # no metadata to handshake with until attach
            self.want_connection = False
            if self.conn is not Conn.STANDALONE:
                self._set_conn(Conn.STANDALONE, "detached")
        else:  # a write waiting for the peer now exists there only
            session.remote_only.update(session.waiting)
        event(log, "volume.detached", logging.WARNING if failed else logging.INFO,
              resource=self.cfg.name, disk=backing.path, reason=reason)
        self._send_state()

    def attach(self, backing: BackingStore, md: MetadataStore) -> str:
        """drbdadm attach: take the backing disk (the old one, or a new one after
        create-md) and resync from the peer: the blocks marked while diskless, or all
        of them for a fresh disk. A primary attaches with `attach_under_primary`."""
        if not self.diskless:
            raise SetupRefused("the disk is attached already")
        if self.role is Role.PRIMARY:
            raise StateChangeRefused("a primary attaches its disk while I/O is paused "
                                     "(attach_under_primary)")
        self._take_disk(backing, md)
        session = self.session
        if session is not None:  # the handshake decides the resync
            session.rehandshake = True
            session.close()
            return "attached: reconnecting to resync from the peer"
        self.want_connection = True
        if self.conn is Conn.STANDALONE:
            self._set_conn(Conn.CONNECTING, "attached")
        self._wake.set()
        return "attached: connecting"

    async def attach_under_primary(self, backing: BackingStore, md: MetadataStore,
                                   settle: float = 10.0) -> str:
        """drbdadm attach on a diskless primary: its I/O pauses, what is under way
        through the peer finishes, the disk is taken (Inconsistent: the peer has every
        write since), and the link is made anew so that the handshake makes this
        primary the sync target; then I/O goes on, reading what is not here yet from
        the peer, while the resync fills the disk."""
        if not self.diskless:
            raise SetupRefused("the disk is attached already")
        session = self.session
        if session is None or not self._peer_has_good_data():
            raise StateChangeRefused("a diskless primary attaches its disk only while "
                                     "connected to an UpToDate peer (to resync from)")
        self._io_pause.clear()
        try:
            deadline = self.clock.now() + settle
            while session.reads or session.waiting or session.flushes:
                if self.clock.now() > deadline or session.closed:
                    raise StateChangeRefused(f"I/O through the peer did not finish within "
                                             f"{settle:g} s: not attached")
                await asyncio.sleep(0.002)
            self._take_disk(backing, md)
            self._write_sb(self.sb.with_flag(MdFlag.CONSISTENT, False))
            session.rehandshake = True
            session.close()
            while (self.session is session or self.repl not in (Repl.SYNC_TARGET,
                                                                Repl.ESTABLISHED)) and \
                    self.clock.now() < deadline + settle:
                await asyncio.sleep(0.005)
        finally:
            self._io_pause.set()
        if self.repl is Repl.SYNC_TARGET:
            return "attached: resyncing from the peer while primary"
        if self.repl is Repl.ESTABLISHED:
            return "attached: in sync with the peer"
        return f"attached, but not reconnected ({self.last_reason}): I/O fails until it is"

    def _take_disk(self, backing: BackingStore, md: MetadataStore) -> None:
        """Make `backing` this node's disk, with its metadata checked against the volume."""
        sb = md.read_superblock()
        if sb.data_size != self.size:
            if sb.generations.current != 0 or md.capacity < self.size:
                raise SetupRefused(f"the disk's metadata describes {sb.data_size} bytes, the "
                                   f"volume has {self.size}: not this volume's disk")
            sb = replace(sb, data_size=self.size)  # fresh metadata: take the volume's size
            md.write_superblock(sb)
        # a disk let go of after an I/O error is Inconsistent until the resync (never a
        # source, never promoted), even if its metadata could not say so then; the peer
        # marked what it misses, the failed range included
        if self.disk_failed:
            sb = sb.with_flag(MdFlag.CONSISTENT, False)
            md.write_superblock(sb)
            self.disk_failed = False
        self.backing, self.md, self.sb = backing, md, sb
        self.bitmap = md.read_bitmap(self.size)
        self.crashed_primary = sb.crashed_primary
        self.refresh_capacity()
        event(log, "volume.attached", resource=self.cfg.name, disk=backing.path,
              generations=str(sb.generations))

    async def resize(self, assume_peer_has_space: bool = False,
                     timeout: float = 30.0) -> str:
        """drbdadm resize: grow both nodes to what their backing disks now hold."""
        self._need_disk("resize")
        if self.repl in (Repl.SYNC_SOURCE, Repl.SYNC_TARGET, Repl.WF_BITMAP,
                         Repl.VERIFY_S, Repl.VERIFY_T):
            raise StateChangeRefused(f"resize is refused while {self.repl.value}")
        self.refresh_capacity(strict=True)
        session = self.session
        if session is None:
            agreement = local_growth(self.size, self.md.capacity, False, assume_peer_has_space)
            if agreement.refusal:
                raise StateChangeRefused(agreement.refusal)
            if agreement.size <= self.size:
                return f"nothing to grow: the backing disk holds {self.md.capacity} bytes"
            old = self.size
            self._grow_to(agreement.size, "resize --assume-peer-has-space")
            return (f"grown from {old} to {self.size} bytes here; the peer grows at the "
                    "next connection")
        waiter = self._resize_waiter = asyncio.get_running_loop().create_future()
        self._grow_request = True
        session.rehandshake = True  # the handshake agrees on the size
        session.close()
        try:
            return await asyncio.wait_for(asyncio.shield(waiter), timeout)
        except TimeoutError:
            raise StateChangeRefused(f"asked the peer to grow, but it did not reconnect "
                                     f"within {timeout:.0f} s (see status)") from None

    def _different_algorithms(self, peer: dict[str, Any]) -> str:
        """The digest settings both nodes must share and do not ('' when they agree).

        A peer that does not say its verify-alg predates the field and uses the default.
        """
        mine = {"verify_alg": self.cfg.verify_alg, "csums_alg": self.cfg.csums_alg,
                "integrity_alg": self.cfg.integrity_alg}
        said = {"verify_alg": "verify-alg", "csums_alg": "csums-alg",
                "integrity_alg": "data-integrity-alg"}
        for name in messages.ALGORITHM_FIELDS:
            theirs = peer.get(name, "sha256" if name == "verify_alg" else "")
            if theirs != mine[name]:
                return (f"different {said[name]} settings: {theirs or '(none)'!r} on the "
                        f"peer, {mine[name] or '(none)'!r} here")
        return ""

    def _integrity_digest(self, data: bytes | bytearray | memoryview) -> bytes:
        """data-integrity-alg's digest of a replicated block (b'' when it is not set)."""
        alg = self.cfg.integrity_alg
        return digester(alg)(data) if alg else b""

    def _check_integrity(self, message: wire.Data) -> None:
        """A replicated block that does not match its digest ends the connection, as in
        DRBD: the sender keeps the block marked out of sync and resyncs it on reconnect."""
        alg = self.cfg.integrity_alg
        if not alg or (message.digest and digester(alg)(message.payload) == message.digest):
            return
        self.stats["integrity_failures"] += 1
        event(log, "volume.integrity_failed", resource=self.cfg.name, alg=alg,
              kind=message.type.name, offset=message.offset, bytes=len(message.payload),
              level=logging.ERROR)
        raise LinkLost(f"data-integrity-alg {alg}: {message.type.name} of "
                       f"{len(message.payload)} bytes at {message.offset} "
                       + ("does not match its digest" if message.digest else "carries no digest")
                       + ": the link corrupts data")

    def _decide(self, peer: dict[str, Any]) -> Sync | None:
        """The handshake verdict (`handshake.decide`), applied; None to drop the link."""
        me = Facts(self.hostname, self.sb.generations, primary=self.role is Role.PRIMARY,
                   crashed_primary=self.crashed_primary, dirty_blocks=self.bitmap.count,
                   inconsistent=self.disk is Disk.INCONSISTENT,
                   primary_since=self.sb.primary_since, discard_my_data=self.discard_my_data)
        theirs = Facts.from_params(peer)
        outcome = decide(me, theirs, Rules(self.cfg.policies, self.cfg.i_connect,
                                           self.cfg.allow_two_primaries))
        verdict = outcome.verdict
        event(log, "volume.handshake", resource=self.cfg.name, rule=verdict.rule,
              decision=verdict.sync.name, reason=verdict.reason, mine=str(me.generations),
              peer=str(theirs.generations))
        if outcome.split_brain is not None:
            self.stats["split_brains"] += 1
            event(log, "volume.split_brain", resource=self.cfg.name,
                  outcome=outcome.split_brain.outcome.name, reason=outcome.split_brain.reason,
                  level=logging.WARNING)
        if verdict.sync is Sync.INCONSISTENT_SOURCE:
            event(log, "volume.refused", resource=self.cfg.name, reason=verdict.reason,
                  level=logging.ERROR)
        self.last_reason = outcome.reason
        if outcome.split_brain_note is not None:
            self.split_brain = outcome.split_brain_note
        if outcome.stop_connecting:
            self.want_connection = False
        for handler in outcome.handlers:
            self._run_handler(handler)
        if outcome.rollback_to is not None:
            self._write_sb(replace(self.sb, generations=self.sb.generations.rolled_back_to(
                outcome.rollback_to)))
        return outcome.sync

    def _in_sync_with_peer(self, sync: Sync) -> None:
        """Connected with nothing to resync: both sides hold the same data."""
        if sync is Sync.BOTH_FRESH:
            return
        sb = self.sb
        if self.peer_disk is Disk.UP_TO_DATE or self.disk is not Disk.INCONSISTENT:
            sb = replace(sb, flags=(sb.flags | MdFlag.CONSISTENT)
                         & ~(MdFlag.OUTDATED | MdFlag.SYNC_TARGET))
            self.uptodate = True
        if self.crashed_primary and self.role is not Role.PRIMARY:
            sb = sb.with_flag(MdFlag.PRIMARY, False)
            self.crashed_primary = False
        if sb != self.sb:
            self._write_sb(sb)
        self.peer_disk = Disk.UP_TO_DATE if self.disk is Disk.UP_TO_DATE else self.peer_disk
        self._send_state()

    # ------------------------------------------------------------------ resync
    async def _start_resync(self, session: Session, sync: Sync) -> None:
        self._set_repl(Repl.WF_BITMAP, sync.value)
        if sync.is_full:
            self.bitmap.set_all()
        session.send(wire.bitmap_message(self.bitmap.to_bytes()))
        theirs = await self._expect(session, wire.T.BITMAP)
        assert isinstance(theirs, wire.Blob)
        self.bitmap.merge(wire.bitmap_of(theirs, (self.bitmap.blocks + 7) // 8))
        self.md.write_bitmap(self.bitmap)
        now = self.clock.now()
        self._sync = {"total": self.bitmap.count, "started": now, "blocks": self.bitmap.count,
                      "direction": "source" if sync.is_source else "target", "finished": False}
        event(log, "volume.resync_start", resource=self.cfg.name, direction=sync.name,
              blocks=self.bitmap.count, bytes=self.bitmap.bytes_marked)
        self._run_handler("before-resync-target" if sync.is_target else "before-resync-source")
        if self.sync_paused_here:  # paused before the link broke: still paused
            self._tell_pause()
        if sync.is_target:
            self._fresh = Bitmap(self.bitmap.blocks)
            self._write_sb(self.sb.with_flag(MdFlag.SYNC_TARGET))
            self.uptodate = False
            self._set_repl(Repl.SYNC_TARGET, sync.value)
            self.peer_disk = Disk.UP_TO_DATE
        else:
            self._set_repl(Repl.SYNC_SOURCE, sync.value)
            self.peer_disk = Disk.INCONSISTENT
            self._spawn(self._resync_source(session))

    async def _resync_source(self, session: Session) -> None:
        try:
            await self._resync_from_here(session)
        except OSError as exc:  # this disk failed: no resync from it; the peer stays
            self._local_io_error("resync read", 0, exc)  # Inconsistent, as with DRBD
            session.close()

    async def _resync_from_here(self, session: Session) -> None:
        pacer = ResyncPacer(self.cfg.rate, self.clock.now())
        in_flight: dict[int, int] = {}
        sending = Bitmap(self.bitmap.blocks)
        #: csums-alg: first block -> blocks of each digest request the target has not answered
        csums_asked: dict[int, int] = {}
        csums = self.cfg.csums_alg
        self._sync["in_flight"] = in_flight
        self._sync["sending"] = sending
        self._sync["pacer"] = pacer
        self._sync["csums_in_flight"] = csums_asked
        cursor = 0
        # lone small ranges go together, unless each needs its own integrity digest
        batch = ResyncBatch() if session.batches_resync and not self.cfg.integrity_alg \
            else None
        while not session.closed and self.repl is Repl.SYNC_SOURCE:
            if self.bitmap.count == 0 and not in_flight:
                break
            now = self.clock.now()
            if self.sync_paused is not None:
                await asyncio.sleep(PAUSED_SYNC_POLL)
                continue
            app_io = now - self.last_app_io < APP_IO_WINDOW
            budget = pacer.allowance(now, sum(in_flight.values()), app_io)
            sent = 0
            # everything marked already on its way: wait for acknowledgements rather
            # than walk past every block in flight again
            waiting_only = bool(in_flight) and sending.count >= self.bitmap.count
            while budget - sent >= BLOCK_SIZE and not waiting_only:
                start = self.bitmap.next_set(cursor)
                if start is None:
                    cursor = 0
                    break
                if sending.test(start):
                    cursor = start + 1
                    continue
                stop = start + 1
                limit = min(self.bitmap.blocks, start + RESYNC_CHUNK_BLOCKS,
                            start + (budget - sent) // BLOCK_SIZE)
                while stop < limit and self.bitmap.test(stop) and not sending.test(stop):
                    stop += 1
                cursor = stop
                offset, length = start * BLOCK_SIZE, (stop - start) * BLOCK_SIZE
                in_flight[start] = length
                sending.set_range(start, stop)
                if csums:  # digests first: the target says which blocks differ
                    csums_asked[start] = stop - start
                    session.send(wire.Verify(wire.T.CSUM_REQUEST, offset, stop - start,
                                             b"".join(self._digests(offset, stop - start,
                                                                    csums))))
                    self.stats["resync_messages"] += 1
                elif batch is not None and length < BIG_WRITE:
                    batch.add(offset, self.backing.read(offset, length))
                    if batch.full:
                        batch.send(session)
                        self.stats["resync_messages"] += 1
                else:
                    self._send_resync_data(session, offset, length)
                    self.stats["resync_messages"] += 1
                sent += length
                if session.link.buffered():  # the socket is full: wait, then send from
                    break                    # the page cache again
            if batch is not None and batch.ranges:
                batch.send(session)
                self.stats["resync_messages"] += 1
            pacer.consume(sent)
            if sent:
                with contextlib.suppress(ConnectionError):
                    await session.drain()
            else:
                delay = max(0.002, min(0.1, pacer.next_deadline(now) - now))
                await asyncio.sleep(delay)
        if session.closed or self.repl is not Repl.SYNC_SOURCE:
            return
        self._write_sb(replace(self.sb, generations=self.sb.generations.after_resync_as_source())
                       .with_flag(MdFlag.PRIMARY, self.role is Role.PRIMARY))
        self.crashed_primary = False
        self.md.write_bitmap(self.bitmap)
        session.send(wire.Control(wire.T.RS_DONE, {
            "generations": self.sb.generations.to_list()}))
        self._finish_sync("source")
        self.peer_disk = Disk.UP_TO_DATE
        self._set_repl(Repl.ESTABLISHED, "resync finished")

    def _send_resync_data(self, session: Session, offset: int, length: int) -> None:
        if length < BIG_WRITE or self.cfg.integrity_alg \
                or not isinstance(self.backing, BackingStore):
            # small: one write of header and block beats a header and a sendfile; a
            # digest needs the bytes here
            data = self.backing.read(offset, length)
            message = wire.Data(wire.T.RS_DATA, 0, offset, data,
                                digest=self._integrity_digest(data))
            if length < BIG_WRITE:
                session.send_soon(message)
            else:
                session.send_data(message)
            return
        head = wire.Data(wire.T.RS_DATA, 0, offset, b"").head(payload_length=length)
        session.link.write_file(head, self.backing.fd, offset, length)

    def _csums_request(self, session: Session, message: wire.Verify) -> None:
        """As sync target: which of the source's blocks differ from this node's? The
        same ones are in sync now; the others stay marked until their data arrives."""
        if not self.cfg.csums_alg:
            raise wire.ProtocolError("CSUM_REQUEST: csums-alg is not set here")
        first = message.offset // BLOCK_SIZE
        mask = bytearray((message.count + 7) // 8)
        same = 0
        for i, digest in enumerate(self._digests(message.offset, message.count,
                                                 self.cfg.csums_alg)):
            if digest != message.payload[i * DIGEST_BYTES:(i + 1) * DIGEST_BYTES]:
                mask[i >> 3] |= 1 << (i & 7)
            else:
                self.bitmap.clear_range(first + i, first + i + 1)
                same += 1
        self.stats["resync_blocks"] += same
        self.stats["resync_same_blocks"] += same
        session.send(wire.Verify(wire.T.CSUM_REPLY, message.offset, message.count, bytes(mask)))

    def _csums_answered(self, session: Session, message: wire.Verify) -> None:
        """As sync source: the target's verdict on a digest request. Blocks it holds
        already are in sync; the differing ones are sent, as a resync without csums."""
        first = message.offset // BLOCK_SIZE
        asked = self._sync["csums_in_flight"].pop(first)
        if asked != message.count:
            raise wire.ProtocolError(f"CSUM_REPLY at {message.offset}: {message.count} "
                                     f"blocks, {asked} were asked about")
        in_flight, sending = self._sync["in_flight"], self._sync["sending"]
        in_flight.pop(first, None)

        def differs(i: int) -> bool:
            return bool(message.payload[i >> 3] & (1 << (i & 7)))

        i = 0
        while i < asked:
            j = i + 1
            while j < asked and differs(j) == differs(i):
                j += 1
            start, stop = first + i, first + j
            if differs(i):
                in_flight[start] = (stop - start) * BLOCK_SIZE
                self._send_resync_data(session, start * BLOCK_SIZE, (stop - start) * BLOCK_SIZE)
                self.stats["resync_messages"] += 1
            else:
                self.bitmap.clear_range(start, stop)
                sending.clear_range(start, stop)
                self.stats["resync_blocks"] += stop - start
                self.stats["resync_same_blocks"] += stop - start
                self._sync["pacer"].acked((stop - start) * BLOCK_SIZE)
            i = j

    def _finish_sync(self, direction: str) -> None:
        elapsed = self.clock.now() - self._sync.get("started", self.clock.now())
        self._sync.update({"finished": True, "seconds": round(elapsed, 3),
                           "direction": direction})
        for key in ("in_flight", "pacer", "sending", "csums_in_flight"):
            self._sync.pop(key, None)
        event(log, "volume.resync_done", resource=self.cfg.name, direction=direction,
              blocks=self._sync.get("blocks"), seconds=round(elapsed, 3))

    def _target_done(self, fields: dict[str, Any]) -> None:
        self.backing.flush()
        self.bitmap.clear_all()
        self.md.write_bitmap(self.bitmap)
        sb = replace(self.sb, generations=Generations.from_list(fields["generations"]),
                     flags=(self.sb.flags | MdFlag.CONSISTENT)
                     & ~(MdFlag.SYNC_TARGET | MdFlag.OUTDATED | MdFlag.PRIMARY))
        self._write_sb(sb.with_flag(MdFlag.PRIMARY, self.role is Role.PRIMARY))
        self._fresh = None
        self.crashed_primary = False
        self.uptodate = True
        self._finish_sync("target")
        self._set_repl(Repl.ESTABLISHED, "resync finished")
        self._run_handler("after-resync-target")
        self._send_state()

    # ------------------------------------------------------------------ verify
    def _digests(self, offset: int, count: int, alg: str) -> list[bytes]:
        data = memoryview(self.backing.read(offset, count * BLOCK_SIZE))
        digest = digester(alg)
        return [digest(data[i * BLOCK_SIZE:(i + 1) * BLOCK_SIZE]) for i in range(count)]

    async def _verify_source(self, session: Session) -> None:
        total = self.size // BLOCK_SIZE
        self._verify = {"running": True, "total_blocks": total, "done_blocks": 0,
                        "out_of_sync": 0, "started": time.time()}
        self._verify_window = asyncio.Semaphore(VERIFY_WINDOW)
        self._verify_pending = 0
        for start in range(0, total, VERIFY_CHUNK_BLOCKS):
            if session.closed or self.repl is not Repl.VERIFY_S:
                return
            await self._verify_window.acquire()
            count = min(VERIFY_CHUNK_BLOCKS, total - start)
            digests = self._digests(start * BLOCK_SIZE, count, self.cfg.verify_alg)
            self._verify_pending += 1
            session.send(wire.Verify(wire.T.OV_REQUEST, start * BLOCK_SIZE, count,
                                     b"".join(digests)))
            with contextlib.suppress(ConnectionError):
                await session.drain()
        while self._verify_pending and not session.closed:
            await asyncio.sleep(0.01)
        if session.closed:
            return
        session.send(wire.Control(wire.T.OV_DONE, {"out_of_sync": self._verify["out_of_sync"]}))
        self._verify_done()

    def _verify_done(self) -> None:
        self._verify["running"] = False
        self.stats["verifies"] += 1
        self.md.write_bitmap(self.bitmap)
        event(log, "volume.verify_done", resource=self.cfg.name,
              out_of_sync_blocks=self._verify.get("out_of_sync", 0))
        if self.repl in (Repl.VERIFY_S, Repl.VERIFY_T):
            self._set_repl(Repl.ESTABLISHED, "verify finished")

    def _verify_request(self, session: Session, message: wire.Verify) -> None:
        if self.repl is Repl.ESTABLISHED:
            self._set_repl(Repl.VERIFY_T, "peer started verify")
            self._verify = {"running": True, "total_blocks": self.size // BLOCK_SIZE,
                            "done_blocks": 0, "out_of_sync": 0, "started": time.time()}
        mine = self._digests(message.offset, message.count, self.cfg.verify_alg)
        mask = bytearray((message.count + 7) // 8)
        first = message.offset // BLOCK_SIZE
        for i, digest in enumerate(mine):
            theirs = message.payload[i * DIGEST_BYTES:(i + 1) * DIGEST_BYTES]
            if digest != theirs:
                mask[i >> 3] |= 1 << (i & 7)
                self.bitmap.set_range(first + i, first + i + 1)
                self._verify["out_of_sync"] = self._verify.get("out_of_sync", 0) + 1
        self._verify["done_blocks"] = self._verify.get("done_blocks", 0) + message.count
        session.send(wire.Verify(wire.T.OV_REPLY, message.offset, message.count, bytes(mask)))

    def _verify_reply(self, message: wire.Verify) -> None:
        first = message.offset // BLOCK_SIZE
        for i in range(message.count):
            if message.payload[i >> 3] & (1 << (i & 7)):
                self.bitmap.set_range(first + i, first + i + 1)
                self._verify["out_of_sync"] += 1
                event(log, "volume.out_of_sync", resource=self.cfg.name,
                      offset=(first + i) * BLOCK_SIZE, level=logging.WARNING)
        self._verify["done_blocks"] += message.count
        self._verify_pending -= 1
        self._verify_window.release()

    # ------------------------------------------------------------------ receiving
    async def _receive(self, session: Session, ping: PingTimer) -> None:
        """Handle what arrives until the link ends.

        Once established, messages are handled right in the transport's receive
        callback (no task switch per replicated write or ack); first, whatever
        queued up during the handshake is handled, in order.
        """
        link = session.link
        while link.queued():
            self._dispatch(session, ping, await session.read())
        link.on_message = lambda message: self._dispatch(session, ping, message)
        try:
            while True:
                self._dispatch(session, ping, await session.read())
        finally:
            link.on_message = None

    def _view(self, session: Session) -> View:
        in_flight = self._sync.get("in_flight")
        return View(size=self.size, role=self.role, repl=self.repl,
                    two_primaries=self.cfg.allow_two_primaries,
                    verify_outstanding=getattr(self, "_verify_pending", 0),
                    resync_in_flight=in_flight if in_flight is not None else frozenset(),
                    peer_flushes=session.peer_flushes,
                    csums_in_flight=self._sync.get("csums_in_flight", frozenset()),
                    # a diskless primary, or one resyncing its disk from here (its reads of
                    # what it lacks may cross the end of the resync)
                    serves_peer_reads=(not self.diskless and self.peer_role is Role.PRIMARY
                                       and self.peer_disk in (Disk.DISKLESS,
                                                              Disk.INCONSISTENT,
                                                              Disk.UP_TO_DATE)),
                    reads_outstanding=session.reads)

    def _dispatch(self, session: Session, ping: PingTimer, message: wire.Message) -> None:
        ping.heard(self.clock.now())
        handling = admit(message, self._view(session))
        if handling is Handling.WRITE:
            assert isinstance(message, wire.Data)
            self._check_integrity(message)
            self._peer_write(session, message)
        elif handling is Handling.ACKNOWLEDGED:
            assert isinstance(message, wire.Ack)
            self._acked(session, message)
        elif handling is Handling.FLUSH_FOR_PEER:
            assert isinstance(message, wire.Ack)
            session.peer_flushes += 1
            self._spawn(self._flush_for_peer(session, message.seq,
                                             asyncio.get_running_loop()))
        elif handling is Handling.FLUSHED:
            assert isinstance(message, wire.Ack)
            covers = session.flush_covers.pop(message.seq, None)
            if covers is not None:
                session.tlog.flushed(covers, self.clock.now())
            future = session.flushes.pop(message.seq, None)
            if future is not None and not future.done():
                future.set_result(None)
        elif handling is Handling.RESYNC_WRITE:
            assert isinstance(message, wire.Data)
            self._check_integrity(message)
            self._resync_written(message.offset, message.payload)
            session.send_soon(wire.Range(wire.T.RS_ACK, message.offset, len(message.payload)))
        elif handling is Handling.RESYNC_WRITE_BATCH:
            assert isinstance(message, wire.Batch)
            payload, position = memoryview(message.payload), 0
            for offset, length in message.ranges:  # each as one RS_DATA's
                self._resync_written(offset, payload[position:position + length])
                position += length
            session.send_soon(wire.Batch(wire.T.RS_ACKS, message.ranges))
        elif handling is Handling.RESYNC_ACKED:
            assert isinstance(message, wire.Range)
            self._resync_acked(message.offset, message.length)
        elif handling is Handling.RESYNC_ACKED_BATCH:
            assert isinstance(message, wire.Batch)
            for offset, length in message.ranges:
                self._resync_acked(offset, length)
        elif handling is Handling.RESYNC_DONE:
            assert isinstance(message, wire.Control)
            self._target_done(message.fields)
        elif handling is Handling.ANSWER_PING:
            session.send(wire.Ack(wire.T.PING_ACK, 0))
        elif handling is Handling.VERIFY_BLOCKS:
            assert isinstance(message, wire.Verify)
            self._verify_request(session, message)
        elif handling is Handling.VERIFY_ANSWER:
            assert isinstance(message, wire.Verify)
            self._verify_reply(message)
        elif handling is Handling.VERIFY_DONE:
            self._verify_done()
        elif handling is Handling.CSUM_BLOCKS:
            assert isinstance(message, wire.Verify)
            self._csums_request(session, message)
        elif handling is Handling.CSUM_ANSWER:
            assert isinstance(message, wire.Verify)
            self._csums_answered(session, message)
        elif handling is Handling.READ_FOR_PEER:
            assert isinstance(message, wire.ReadRequest)
            self._read_for_peer(session, message)
        elif handling is Handling.READ_ANSWERED:
            assert isinstance(message, (wire.Data, wire.Ack))
            read = session.reads.pop(message.seq)
            if read.done():
                pass
            elif isinstance(message, wire.Data):
                self._check_integrity(message)
                read.set_result(bytes(message.payload))
            else:
                read.set_exception(OSError(errno.EIO, "the peer could not read it"))
        elif handling is Handling.MARK_OUT_OF_SYNC:
            assert isinstance(message, wire.Range)
            self.bitmap.set_range(*block_range(message.offset, message.length))
        elif handling is Handling.PEER_STATE:
            assert isinstance(message, wire.Control)
            self._peer_state(message.fields)
        elif handling is Handling.GOODBYE:
            assert isinstance(message, wire.Control)
            session.bye = message.fields
            raise LinkLost(f"peer disconnected: {message.fields.get('reason', 'by request')}")

    def _write_resync_data(self, offset: int, payload: bytes | memoryview) -> None:
        """Write what the sync source sent, but the blocks this (primary) node wrote
        since the resync began: those hold newer data than the source's copy did."""
        fresh = self._fresh
        start, stop = block_range(offset, len(payload))
        if fresh is None or not fresh.any_in(start, stop):
            self.backing.write(offset, payload)
            return
        block = start
        while block < stop:
            if fresh.test(block):
                block += 1
                continue
            end = block + 1
            while end < stop and not fresh.test(end):
                end += 1
            low = (block - start) * BLOCK_SIZE
            self.backing.write(block * BLOCK_SIZE, payload[low:(end - start) * BLOCK_SIZE])
            block = end

    def _resync_written(self, offset: int, payload: bytes | memoryview) -> None:
        """One resync range as the sync target: written, and in sync from now on."""
        self._write_resync_data(offset, payload)
        start, stop = block_range(offset, len(payload))
        self.bitmap.clear_range(start, stop)
        self.stats["resync_blocks"] += stop - start
        self.stats["nr"] += len(payload)

    def _read_for_peer(self, session: Session, message: wire.ReadRequest) -> None:
        """The diskless primary peer reads through this node's disk."""
        try:
            data = self.backing.read(message.offset, message.length)
        except OSError as exc:
            self._local_io_error("read for the peer", message.offset, exc)
            session.send(wire.Ack(wire.T.READ_ERROR, message.seq))
            return
        self.stats["dr"] += len(data)
        session.send_data(wire.Data(wire.T.READ_REPLY, message.seq, message.offset, data,
                                    digest=self._integrity_digest(data)))

    def _peer_write(self, session: Session, message: wire.Data) -> None:
        if self.cfg.protocol is Protocol.B:
            session.send(wire.Ack(wire.T.RECV_ACK, message.seq))
        try:
            self.backing.write(message.offset, message.payload)
        except OSError as exc:
            if not self.diskless:
                self._local_io_error("write for the peer", message.offset, exc)
            session.send(wire.Ack(wire.T.NEG_ACK, message.seq))
            return
        if self.peer_disk is Disk.DISKLESS:  # the peer keeps no copy: it lacks this block
            self.bitmap.set_range(*block_range(message.offset, len(message.payload)))
        self.stats["nr"] += len(message.payload)
        session.last_written = max(session.last_written, message.seq)
        session.send(wire.Ack(wire.T.WRITE_ACK, message.seq))

    def _resync_acked(self, offset: int, length: int) -> None:
        start, stop = block_range(offset, length)
        self.bitmap.clear_range(start, stop)
        self.stats["resync_blocks"] += stop - start
        in_flight = self._sync.get("in_flight")
        if in_flight is not None:
            in_flight.pop(start, None)
            self._sync["sending"].clear_range(start, stop)
        pacer = self._sync.get("pacer")
        if pacer is not None:
            pacer.acked(length)

    def _acked(self, session: Session, message: wire.Ack) -> None:
        waiting = session.waiting.get(message.seq)
        if message.type is wire.T.RECV_ACK:
            session.tlog.received(message.seq)
            if message.seq in session.remote_only:
                return  # protocol B: a write with no local copy waits for WRITE_ACK
        else:
            now = self.clock.now()
            transfer = session.tlog.written(message.seq, now)
            sent = session.sent_at.pop(message.seq, None)
            if sent is not None:
                self.stats["acked_writes"] += 1
                self.stats["ack_wait_us"] += int((now - sent) * 1e6)
            if message.type is wire.T.NEG_ACK and transfer is not None:
                self.bitmap.set_range(*block_range(transfer.offset, transfer.length))
            session.waiting.pop(message.seq, None)
            if message.seq in session.remote_only:
                session.remote_only.discard(message.seq)
                if waiting is not None and not waiting[0].done():
                    if message.type is wire.T.NEG_ACK:
                        waiting[0].set_exception(OSError(errno.EIO, "the peer could not "
                                                         "write it, and this node has no disk"))
                    else:
                        waiting[0].set_result(None)
                return
        if waiting is not None:
            future, progress = waiting
            if not future.done() and is_complete(self.cfg.protocol, progress):
                future.set_result(None)

    async def _flush_for_peer(self, session: Session, seq: int,
                              loop: asyncio.AbstractEventLoop) -> None:
        try:
            await loop.run_in_executor(None, self.backing.flush)
        except OSError as exc:
            # no FLUSH_ACK: this node goes diskless, and the peer, told so, counts on its
            # own disk alone (its waiting flushes complete with that)
            self._local_io_error("flush for the peer", 0, exc)
            return
        finally:
            session.peer_flushes -= 1
        session.send(wire.Ack(wire.T.FLUSH_ACK, seq))

    def _peer_state(self, fields: dict[str, Any]) -> None:
        role, disk, verify = messages.state(fields)
        if messages.invalidate_asked(fields):
            self._invalidate_for_peer()
        skip = messages.skip_initial_sync(fields)
        if skip is not None:
            self._skip_initial_sync_for_peer(skip)
        paused = messages.sync_paused(fields)
        if paused is not None and paused != self.sync_paused_peer:
            self.sync_paused_peer = paused
            event(log, "volume.sync_paused" if paused else "volume.sync_resumed",
                  resource=self.cfg.name, by="peer")
        if role is not None:
            self.peer_role = role
        if disk is Disk.DISKLESS and self.peer_disk is not Disk.DISKLESS:
            self._peer_detached()
        if disk is not None:
            self.peer_disk = disk
        if verify == "start" and self.repl is Repl.ESTABLISHED:
            self._set_repl(Repl.VERIFY_T, "peer started verify")
            self._verify = {"running": True, "total_blocks": self.size // BLOCK_SIZE,
                            "done_blocks": 0, "out_of_sync": 0, "started": time.time()}

    def _peer_detached(self) -> None:
        """The peer let go of its disk: from now on writes are marked here, counted from
        a new generation, so its `attach` resyncs exactly those."""
        if self.disk in (Disk.UP_TO_DATE, Disk.CONSISTENT):
            self._write_sb(replace(self.sb, generations=self.sb.generations.new_current(
                self._fresh_id())))
        session = self.session
        if session is not None and not self.diskless:  # this disk alone holds the data now
            for flushed in session.flushes.values():
                if not flushed.done():
                    flushed.set_result(None)
        event(log, "volume.peer_diskless", resource=self.cfg.name,
              generations=str(self.sb.generations))

    def _invalidate_for_peer(self) -> None:
        """The peer ran invalidate-remote: as `invalidate` here, unless this node is
        primary (a primary is never a sync target) or already syncing."""
        if self.role is Role.PRIMARY or self.repl is not Repl.ESTABLISHED:
            event(log, "volume.invalidate_refused", logging.WARNING, resource=self.cfg.name,
                  reason=f"asked by the peer while {self.role.value} and {self.repl.value}")
            return
        self._spawn(self.invalidate())

    @property
    def sync_paused(self) -> str | None:
        """Why the resync waits (DRBD's resync-suspended:user or :peer), None if it may go."""
        if self.sync_paused_here:
            return "user"
        if self.sync_paused_peer:
            return "peer"
        return None

    def pause_sync(self) -> str:
        """drbdadm pause-sync: the running resync waits until resume-sync."""
        if self.repl not in (Repl.SYNC_SOURCE, Repl.SYNC_TARGET):
            raise StateChangeRefused("no resync is running")
        if self.sync_paused_here:
            return "resync already paused here"
        self.sync_paused_here = True
        self._tell_pause()
        event(log, "volume.sync_paused", resource=self.cfg.name, by="user")
        return "resync paused"

    def resume_sync(self) -> str:
        """drbdadm resume-sync: drop this node's pause flag."""
        if not self.sync_paused_here:
            raise StateChangeRefused("the resync was not paused here")
        self.sync_paused_here = False
        self._tell_pause()
        event(log, "volume.sync_resumed", resource=self.cfg.name, by="user")
        return "resync resumed" if not self.sync_paused_peer else \
            "resumed here; the peer still pauses it"

    def _tell_pause(self) -> None:
        if self.session is not None:
            self.session.send(wire.Control(wire.T.STATE,
                                           {"sync_paused": self.sync_paused_here}))

    def _send_state(self) -> None:
        if self.session is not None:
            self.session.send(wire.Control(wire.T.STATE, {"role": self.role.value,
                                                         "disk": self.disk.value}))

    async def _pinger(self, session: Session, ping: PingTimer) -> None:
        while not session.closed:
            now = self.clock.now()
            oldest = min(session.sent_at.values(), default=None)
            if session.tlog.flush_due(now):
                self._ask_peer_flush(session)
            action, deadline = ping.check(now, oldest)
            if action is Liveness.SEND_PING:
                session.send(wire.Ack(wire.T.PING, 0))
            elif action in (Liveness.DEAD, Liveness.STALLED):
                event(log, "volume.peer_dead", resource=self.cfg.name, reason=action.value,
                      level=logging.WARNING)
                session.close()
                return
            await asyncio.sleep(max(0.01, min(0.5, deadline - now)))

    async def _probe_primary_peer(self) -> None:
        """Before refusing a promotion because the peer is primary, ask whether it lives.

        A primary that lost power leaves an idle link that looks connected until
        ping-int passes (10 s by default), and heartbeat's takeover would fail on
        it. A ping now gets an answer within ping-timeout from a live peer; no
        answer drops the link (the pinger declares the peer dead) and the
        promotion goes on.
        """
        session = self.session
        if session is None or session.ping is None:
            return
        now = self.clock.now()
        if session.ping.probe(now):
            event(log, "volume.peer_probe", resource=self.cfg.name,
                  reason="promotion asked while the peer is primary")
            session.send(wire.Ack(wire.T.PING, 0))
        deadline = now + self.cfg.link.ping_timeout + PROBE_GRACE
        while session.ping.probing and self.session is session and self.clock.now() < deadline:
            await asyncio.sleep(0.02)
        if session.closed and self.session is session:  # the link is being torn down
            await self._session_gone(session, deadline)

    async def _session_gone(self, session: Session, deadline: float) -> None:
        while self.session is session and self.clock.now() < deadline:
            await asyncio.sleep(0.02)

    # ------------------------------------------------------------------ losing the link
    def _session_ended(self, session: Session) -> None:
        session.close()
        was_connected = self.session is session
        self.session = None
        through = messages.bye_flushed(session.bye or {})  # checked when the BYE came
        if through is not None:
            session.tlog.flushed(through)
        for transfer in session.tlog.connection_lost():
            self.bitmap.set_range(*block_range(transfer.offset, transfer.length))
        lost = OSError(errno.EIO, "the link to the peer, which held the only copy, is lost")
        for seq, (future, _) in session.waiting.items():
            if not future.done():
                if seq in session.remote_only:
                    future.set_exception(lost)
                else:
                    future.set_result(None)
        session.waiting.clear()
        for read in session.reads.values():
            if not read.done():
                read.set_exception(lost)
        session.reads.clear()
        for future in session.flushes.values():
            if not future.done():
                if self.diskless and self.role is Role.PRIMARY:
                    future.set_exception(lost)
                else:
                    future.set_result(None)
        if self.repl is not Repl.OFF:
            self._set_repl(Repl.OFF, "link lost")
        self._fresh = None
        self.peer_role = Role.UNKNOWN
        self.peer_disk = Disk.UNKNOWN
        self.sync_paused_peer = False
        if self.diskless and not session.rehandshake:
            self.want_connection = False  # no metadata to handshake with: attach first
            self.last_reason = "diskless: attach to connect again"
        if not was_connected:
            if self.conn is Conn.CONNECTED:
                self._set_conn(Conn.CONNECTING, "handshake failed")
            elif not self.want_connection and self.conn is not Conn.STANDALONE:
                self._set_conn(Conn.STANDALONE, self.last_reason or "refused")
            return
        sb = self.sb.with_flag(MdFlag.CONNECTED, False)
        bye = session.bye or {}
        # a primary whose disk is Inconsistent (attached under it) has no data of its own
        # to start a generation with, nor any to outdate its peer for
        if self.role is Role.PRIMARY and self.disk is not Disk.INCONSISTENT:
            sb = replace(sb, generations=sb.generations.new_current(self._fresh_id()))
            if self.cfg.fencing != "dont-care" and not self._stopping and not session.rehandshake:
                self._spawn(self._fence_after_loss())
        elif bye.get("outdate_you") and self.disk is not Disk.INCONSISTENT:
            sb = sb.with_flag(MdFlag.OUTDATED)
            self.uptodate = False
        if sb != self.sb:
            self._write_sb(sb)
        self.md.write_bitmap(self.bitmap)
        self._set_conn(Conn.CONNECTING if self.want_connection else Conn.STANDALONE,
                       self.last_reason or "link lost")

    @property
    def io_frozen_reason(self) -> str | None:
        """Why writes are suspended (DRBD's suspended:fencing), None while they flow."""
        return self.write_freeze.reason

    async def _fence_after_loss(self) -> None:
        """fencing resource-only/-and-stonith: the primary that lost its peer fences it;
        with resource-and-stonith its writes wait until the fence is resolved."""
        freeze = self.cfg.fencing == "resource-and-stonith"
        token = self._freeze_io("fencing the peer") if freeze else 0
        connection = self._connections
        outcome = FenceOutcome(False, why="the fence-peer handler did not finish")
        try:
            outcome = await self._fence_peer(connection)
        finally:
            if freeze and self.write_freeze.settle(token, outcome):
                self._open_gate_if_thawed()
                if outcome.resolved:
                    event(log, "volume.io_resumed", resource=self.cfg.name,
                          reason=outcome.why or "fenced")
                else:
                    event(log, "volume.io_frozen", logging.ERROR, resource=self.cfg.name,
                          reason=outcome.why, remedy=f"fence the peer by hand, then "
                          f"`vigil volume resume-io {self.cfg.name}`")

    async def _fence_peer(self, connection: int) -> FenceOutcome:
        command = self.cfg.handlers.get("fence-peer")
        rc = 5 if not command else await self._handler_rc(command)
        outcome = fence_outcome(rc, self.disk is Disk.UP_TO_DATE)
        if connection != self._connections:
            outcome = FenceOutcome(True, why="ignored: the peer connected again while the "
                                             "handler ran")
        self.last_fence = {"exit": rc, "result": outcome.why}
        event(log, "volume.fence_peer", resource=self.cfg.name, exit=rc, result=outcome.why)
        if connection != self._connections:
            return outcome
        if outcome.peer_outdated:
            self._write_sb(self.sb.with_flag(MdFlag.PEER_OUTDATED))
            self.peer_disk = Disk.OUTDATED
        if outcome.outdate_self and self.disk is not Disk.INCONSISTENT:
            self._write_sb(self.sb.with_flag(MdFlag.OUTDATED))
            self.uptodate = False
        return outcome

    def _freeze_io(self, why: str) -> int:
        """Writes wait from now on; the token lets only this fence settle the freeze."""
        token = self.write_freeze.freeze(why)
        if self._io_open.is_set():
            self._io_open.clear()
            event(log, "volume.io_suspended", logging.WARNING, resource=self.cfg.name,
                  reason=why)
        return token

    def _open_gate_if_thawed(self) -> None:
        if not self.write_freeze.frozen:
            self._io_open.set()

    def resume_io(self, why: str = "resume-io") -> str:
        """Writes flow again (drbdadm resume-io; also once the peer is back)."""
        if not self.write_freeze.thaw():
            return "I/O is not suspended"
        self._io_open.set()
        event(log, "volume.io_resumed", resource=self.cfg.name, reason=why)
        return "I/O resumed"

    def _handler_env(self) -> dict[str, str]:
        return {**os.environ, "DRBD_RESOURCE": self.cfg.name,
                "DRBD_PEER_ADDRESS": self.cfg.peer.address, "DRBD_PEER_AF": "ipv4",
                "DRBD_PEERS": self.cfg.peer.host, "DRBD_MINOR": "".join(
                    c for c in self.cfg.local.device if c.isdigit()) or "0",
                "DRBD_CONF": self.cfg.source}

    async def _handler_rc(self, command: str) -> int:
        try:
            process = await asyncio.create_subprocess_shell(
                command, env=self._handler_env(), start_new_session=True,
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            return await asyncio.wait_for(process.wait(), timeout=60)
        except (OSError, TimeoutError):
            return 1

    def _run_handler(self, name: str) -> None:
        command = self.cfg.handlers.get(name) if name else None
        if command:
            event(log, "volume.handler", resource=self.cfg.name, handler=name)
            self._spawn(self._handler_rc(command))

    # ------------------------------------------------------------------ background
    async def _metadata_flusher(self) -> None:
        """Persist bitmap changes once a second (after the data they describe)."""
        loop = asyncio.get_running_loop()
        while not self._stopping:
            await asyncio.sleep(1.0)
            if self.bitmap.dirty_pages:
                # the pages as they were before the flush: what the flush covers
                pages = self.bitmap.take_dirty()
                try:
                    await loop.run_in_executor(None, self.backing.flush)
                    self.md.write_bitmap_pages(pages)
                except OSError as exc:
                    self._local_io_error("metadata", 0, exc)

    async def shutdown(self) -> None:
        """Clean stop: goodbye to the peer, bitmap and superblock on disk."""
        if self.session is not None:
            await self._settle_peer(self.session)
            self.session.send(wire.Control(wire.T.BYE, {
                "outdate_you": self.role is Role.PRIMARY, "reason": "peer going down"}))
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.session.drain(), 2)
        self.stop()
        self.backing.flush()
        self.md.write_bitmap(self.bitmap)
        if self.role is Role.PRIMARY:  # down without demotion: like DRBD, stays "was primary"
            self.md.write_activity_log(self.al.extents())
