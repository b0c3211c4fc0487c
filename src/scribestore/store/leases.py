"""Leases that keep gc's sweep and writers apart (docs/FORMAT.md section 7.1).

Writers share a store: each holds a *write* lease from its first existence
check until its manifest commits. gc's sweep has the store alone: it holds
the *gc* lease, which it takes only once no write lease is live, and while
it waits new writers queue behind it. Each side writes its lease file before
it lists the other side's, so two racing parties cannot both miss each
other. Leases are refreshed by a background thread; one whose holder died
(same machine, no such process) or that has not been refreshed for the
stale time is taken over.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import socket
import threading
import time
from typing import TYPE_CHECKING, Literal, TypeVar

import msgspec

from scribestore.exception import LeaseLostError, LockTimeoutError, StorageError
from scribestore.store.layout import LOCKS_DIR

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from scribestore.storage import Storage

__all__ = ["Lease", "LeaseHolder", "LeasePolicy", "Leases", "this_host"]

#: Where lease files live inside an object store.

Kind = Literal["write", "gc"]
_T = TypeVar("_T")


class LeasePolicy(msgspec.Struct, frozen=True, kw_only=True):
    """Timings of leases, in seconds.

    Attributes:
        refresh: how often a held lease is rewritten.
        stale: a lease not rewritten for this long is taken over.
        wait: how long a writer waits for a running gc (and gc for writers
            in flight) before it raises :class:`LockTimeoutError`.
    """

    refresh: float = 60.0
    stale: float = 600.0
    wait: float = 600.0


class LeaseHolder(msgspec.Struct, frozen=True, kw_only=True):
    """The content of a lease file: who holds it."""

    kind: str
    host: str
    pid: int
    token: str


class _Found(msgspec.Struct, frozen=True):
    path: str
    holder: LeaseHolder | None
    age: float


def this_host() -> str:
    """This machine and process namespace: where a pid can be checked for life."""
    boot = ""
    with contextlib.suppress(OSError), open("/proc/sys/kernel/random/boot_id") as f:
        boot = f.read().strip()
    pid_ns = ""
    with contextlib.suppress(OSError):
        pid_ns = str(os.stat("/proc/self/ns/pid").st_ino)
    return f"{socket.gethostname()}|{boot}|{pid_ns}"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(found: _Found) -> str:
    """One line naming a lease's holder, for error messages."""
    h = found.holder
    who = "an unreadable lease" if h is None else f"pid {h.pid} on {h.host.split('|')[0]}"
    return f"{who} ({found.path}, refreshed {found.age:.0f} s ago)"


class Lease:
    """A lease file held by this process, refreshed by a background thread."""

    def __init__(self, leases: Leases, kind: Kind) -> None:
        self._leases = leases
        self.kind = kind
        self.path = f"{LOCKS_DIR}/{kind}-{secrets.token_hex(16)}.json"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self) -> None:
        """Write the lease file and start refreshing it."""
        holder = LeaseHolder(kind=self.kind, host=self._leases.host, pid=os.getpid(), token="")
        self._leases.call(
            lambda: self._leases.storage.write_new(self.path, (msgspec.json.encode(holder),))
        )
        self._thread = threading.Thread(
            target=self._refresh_loop, name="scribestore-lease", daemon=True
        )
        self._thread.start()

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._leases.policy.refresh):
            try:
                self._leases.storage.touch(self.path)
            except FileNotFoundError:
                return  # broken as stale: check() reports it
            except OSError:
                continue  # a passing storage error: try again next time

    def check(self) -> None:
        """Raise unless the lease file still exists.

        Raises:
            LeaseLostError: it was deleted (taken over as stale).
            StorageError: the storage failed.
        """
        if not self._leases.call(lambda: self._leases.storage.exists(self.path)):
            raise LeaseLostError(
                f"the {self.kind} lease {self.path} in {self._leases.storage.url} was taken "
                "over as stale (this process was paused or cut off for longer than the "
                "stale time); nothing was committed, retry"
            )

    def release(self) -> None:
        """Stop refreshing and delete the lease file (already gone is fine)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        with contextlib.suppress(FileNotFoundError, StorageError):
            self._leases.call(lambda: self._leases.storage.delete(self.path))


class Leases:
    """The leases of one object store's storage."""

    def __init__(self, storage: Storage, policy: LeasePolicy | None = None) -> None:
        self.storage = storage
        self.policy = policy or LeasePolicy()
        self.host = this_host()
        self._guard = threading.Lock()
        self._held: Lease | None = None
        self._depth = 0

    def call(self, fn: Callable[[], _T]) -> _T:
        """Run a storage call, turning OSErrors other than not-found into StorageError."""
        try:
            return fn()
        except FileNotFoundError:
            raise
        except OSError as exc:
            if isinstance(exc, StorageError):
                raise
            raise StorageError(f"lease storage at {self.storage.url} failed: {exc}") from exc

    # --- finding -------------------------------------------------------------

    def found(self, kind: str = "") -> list[_Found]:
        """The lease files of ``kind`` (every kind if empty), with holder and age.

        Raises:
            StorageError: the storage failed.
        """
        now = dt.datetime.now(dt.timezone.utc)
        out = []
        for path in self.call(lambda: list(self.storage.list(LOCKS_DIR))):
            name = path.rsplit("/", 1)[-1]
            if not name.endswith(".json") or not name.startswith(kind + "-" if kind else ""):
                continue  # another kind, or an in-flight write (".tmp-…")
            try:
                data = self.storage.read_bytes(path)
                modified = self.storage.modified(path)
            except FileNotFoundError:
                continue  # released meanwhile
            except OSError as exc:
                raise StorageError(
                    f"cannot read lease {path} in {self.storage.url}: {exc}"
                ) from exc
            try:
                holder: LeaseHolder | None = msgspec.json.decode(data, type=LeaseHolder)
            except msgspec.DecodeError:
                holder = None
            out.append(_Found(path, holder, (now - modified).total_seconds()))
        return out

    def _stale(self, found: _Found) -> bool:
        if found.age > self.policy.stale:
            return True
        h = found.holder
        return h is not None and h.host == self.host and not _process_alive(h.pid)

    def stale(self) -> list[str]:
        """Paths of every stale lease now in the store."""
        return [f.path for f in self.found() if self._stale(f)]

    def _live(self, kind: str, *, exclude: str = "") -> list[_Found]:
        """Live leases of ``kind`` (by file name); stale ones are deleted on the way."""
        live = []
        for found in self.found(kind):
            if found.path == exclude:
                continue
            if self._stale(found):
                with contextlib.suppress(FileNotFoundError, OSError):
                    self.storage.delete(found.path)
                continue
            live.append(found)
        return live

    # --- taking --------------------------------------------------------------

    @contextlib.contextmanager
    def writing(self) -> Iterator[Lease]:
        """Hold a write lease (shared, re-entrant within this object).

        Raises:
            LockTimeoutError: a gc held the store for longer than the policy's wait.
            StorageError: the storage failed.
        """
        with self._guard:
            if self._held is None:
                self._held = self._take_write()
            self._depth += 1
            lease = self._held
        try:
            yield lease
        finally:
            with self._guard:
                self._depth -= 1
                if self._depth == 0:
                    self._held = None
                    lease.release()

    def _take_write(self) -> Lease:
        deadline = time.monotonic() + self.policy.wait
        while True:
            lease = Lease(self, "write")
            lease.publish()
            if not self._live("gc"):
                return lease
            lease.release()
            self._wait_gone(
                "gc",
                deadline,
                lambda gcs: (
                    f"gave up after {self.policy.wait:.0f} s waiting for garbage "
                    f"collection to finish in {self.storage.url}: held by {describe(gcs[0])}; "
                    "retry later, or delete the lease file if that process is gone"
                ),
            )

    def _wait_gone(
        self, kind: str, deadline: float, message: Callable[[list[_Found]], str]
    ) -> None:
        """Poll until no live lease of ``kind`` is left.

        Raises:
            LockTimeoutError: some were still live at ``deadline`` (``message`` says which).
        """
        delay = 0.01
        while found := self._live(kind):
            if time.monotonic() > deadline:
                raise LockTimeoutError(message(found))
            time.sleep(delay)
            delay = min(delay * 2, 0.5)

    @contextlib.contextmanager
    def exclusive(self, *, wait: float | None = None) -> Iterator[Lease]:
        """Hold the gc lease: no writer is in flight while it is held.

        Raises:
            LockTimeoutError: another gc is running, or writers stayed in
                flight for longer than ``wait`` seconds (default: the policy's).
            StorageError: the storage failed.
        """
        limit = self.policy.wait if wait is None else wait
        lease = Lease(self, "gc")
        lease.publish()
        try:
            others = self._live("gc", exclude=lease.path)
            if others:
                raise LockTimeoutError(
                    f"another garbage collection is running in {self.storage.url}: "
                    f"{describe(others[0])}; wait for it to finish"
                )
            self._wait_gone(
                "write",
                time.monotonic() + limit,
                lambda writers: (
                    f"gave up after {limit:.0f} s waiting for {len(writers)} "
                    f"writer(s) in {self.storage.url} to finish, first {describe(writers[0])}; "
                    "nothing was deleted, retry later"
                ),
            )
        except BaseException:
            lease.release()
            raise
        try:
            yield lease
        finally:
            lease.release()
