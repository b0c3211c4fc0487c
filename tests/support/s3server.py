"""A throwaway S3 API server for tests: moto's standalone server in a subprocess.

Its conditional writes (``If-Match`` / ``If-None-Match``) are made atomic, as
on S3, by ``moto_atomic.py``; plain moto can let two conditional writers win.

The server runs as its own process bound to 127.0.0.1, so anything that can open a
loopback TCP connection can use it: the test process, threads, and child processes
started by a test (fork or spawn) given :meth:`S3Server.storage_options`.

    with S3Server() as server:
        server.create_bucket("bucket")
        fs = s3fs.S3FileSystem(**server.storage_options())
        fs.pipe_file("bucket/key", b"data")

The server needs nothing from the caller's environment: its process gets dummy
credentials, a fixed region, no AWS config/credentials files and no proxy settings.
The client options pin endpoint, credentials, region, addressing style and (no)
proxies, so AWS_* variables, ~/.aws files and HTTP_PROXY in a test's environment are
overridden -- except an AWS_PROFILE naming a missing profile (botocore ProfileNotFound).
"""

from __future__ import annotations

import contextlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO

__all__ = ["S3Server", "S3ServerError", "client_options", "create_bucket"]

HOST = "127.0.0.1"
_MOTO_ATOMIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_atomic.py")
ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"

# Environment variables that could redirect or reconfigure the server process.
_SCRUBBED_PREFIXES = ("AWS_", "MOTO_", "BOTO_")
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class S3ServerError(RuntimeError):
    """The moto server could not be started."""


class _EarlyExit(S3ServerError):
    """The server process exited before answering (e.g. its port was taken)."""


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port


def _child_env() -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.upper().startswith(_SCRUBBED_PREFIXES) and name.upper() not in _PROXY_VARS
    }
    env.update(
        {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "*",
            "no_proxy": "*",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


class S3Server:
    """Context manager running ``python -m moto.server`` on a free loopback port."""

    def __init__(self, *, startup_timeout: float = 30.0, stop_timeout: float = 10.0) -> None:
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.port = 0
        self.endpoint_url = ""
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------

    def start(self) -> S3Server:
        if self._proc is not None:
            raise S3ServerError("server already started")
        failures: list[str] = []
        # A port found free can be taken by someone else before moto binds it, so an
        # early exit is retried on a new port; a server that hangs is not.
        for _ in range(3):
            try:
                self._start_once()
                return self
            except _EarlyExit as exc:
                failures.append(str(exc))
        raise S3ServerError("moto server failed to start:\n\n" + "\n\n".join(failures))

    def _start_once(self) -> None:
        port = _free_port()
        log = tempfile.TemporaryFile(prefix="moto-server-")  # noqa: SIM115 - closed in stop()
        # moto.server, with conditional writes made atomic (see moto_atomic.py).
        cmd = [sys.executable, _MOTO_ATOMIC, "-H", HOST, "-p", str(port)]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=_child_env(),
            cwd=tempfile.gettempdir(),
        )
        self._proc, self._log = proc, log
        self.port = port
        self.endpoint_url = f"http://{HOST}:{port}"
        deadline = time.monotonic() + self.startup_timeout
        while not self._answers():
            if proc.poll() is not None:
                output = self.output()
                self.stop()
                raise _EarlyExit(f"{' '.join(cmd)} exited with code {proc.returncode}:\n{output}")
            if time.monotonic() > deadline:
                self._stop_process()
                output = self.output()
                self.stop()
                raise S3ServerError(
                    f"{' '.join(cmd)} did not answer on {HOST}:{port} "
                    f"within {self.startup_timeout:g}s; server output:\n{output}"
                )
            time.sleep(0.05)

    def _answers(self) -> bool:
        conn = http.client.HTTPConnection(HOST, self.port, timeout=2)
        try:
            conn.request("GET", "/")  # any HTTP answer means "up"
            conn.getresponse().read()
            return True
        except OSError:
            return False
        finally:
            conn.close()

    def _stop_process(self) -> None:
        proc = self._proc
        if proc is not None and proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=self.stop_timeout)

    def stop(self) -> None:
        """Terminate the server (kill it if it ignores SIGTERM); idempotent."""
        try:
            self._stop_process()
        finally:
            self._proc = None
            log, self._log = self._log, None
            if log is not None:
                log.close()

    def __enter__(self) -> S3Server:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- helpers -----------------------------------------------------------------

    def output(self) -> str:
        """The server's combined stdout/stderr so far (for error messages)."""
        if self._log is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            self._log.flush()
            self._log.seek(0)
            return self._log.read().decode("utf-8", "replace")
        return ""

    def storage_options(self) -> dict[str, object]:
        """s3fs.S3FileSystem keyword arguments reaching this server.

        Plain, picklable data (str/bool/dict), so it can be handed to child processes.
        fsspec's instance cache stays on, as for users: it is keyed by these
        options (another server is another instance) and cleared in a child
        process; ``use_listings_cache=False`` keeps
        ``ls``/``exists``/``info`` from answering out of a stale directory cache;
        ``proxies: {}`` stops botocore from routing loopback traffic through an
        ``HTTP_PROXY`` found in the environment. (An ``AWS_PROFILE`` naming a profile
        missing from the AWS config file still makes botocore raise ProfileNotFound.)
        """
        if not self.endpoint_url:
            raise S3ServerError("server not started")
        return client_options(self.endpoint_url, ACCESS_KEY, SECRET_KEY)

    def create_bucket(self, name: str) -> None:
        create_bucket(self.storage_options(), name)

    def reset(self) -> None:
        """Drop every bucket and object (moto's reset API)."""
        conn = http.client.HTTPConnection(HOST, self.port, timeout=10)
        try:
            conn.request("POST", "/moto-api/reset")
            response = conn.getresponse()
            response.read()
            if response.status != 200:
                raise S3ServerError(f"moto reset failed: HTTP {response.status}")
        finally:
            conn.close()


def client_options(endpoint_url: str, key: str, secret: str) -> dict[str, object]:
    """s3fs keyword arguments reaching a test S3 server (see
    :meth:`S3Server.storage_options` for why each is set); picklable."""
    return {
        "endpoint_url": endpoint_url,
        "key": key,
        "secret": secret,
        "token": None,
        "anon": False,
        "use_ssl": False,
        "use_listings_cache": False,
        "client_kwargs": {"region_name": REGION},
        "config_kwargs": {
            "proxies": {},
            "s3": {"addressing_style": "path"},
            "retries": {"max_attempts": 2, "mode": "standard"},
            "connect_timeout": 5,
            "read_timeout": 60,
        },
    }


def create_bucket(options: dict[str, object], name: str) -> None:
    """Create bucket ``name`` on the server ``options`` reach."""
    import s3fs  # imported lazily: the module stays importable without s3fs

    fs = s3fs.S3FileSystem(**options)
    # Not fs.mkdir(): with a region in client_kwargs it sends a LocationConstraint,
    # which S3 rejects for us-east-1.
    fs.call_s3("create_bucket", Bucket=name)
    fs.invalidate_cache()
