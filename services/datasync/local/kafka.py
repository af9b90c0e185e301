"""A real Apache Kafka broker (KRaft mode) run as a child process, without Docker.

The broker jars are fetched from Maven Central with ``mvn`` (see ``pom.xml`` next to
this file) into a cache directory, and the broker runs on the local JVM. One process is
both broker and controller; several of them on loopback form a multi-node cluster.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import contextlib
import fcntl
import functools
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import (
    KafkaError,
    KafkaTimeoutError,
    TopicAlreadyExistsError,
    for_code,
)

from datasync.local.children import ChildRegistry

__all__ = ["LocalKafka", "LocalKafkaError", "ensure_kafka_jars", "ensure_topics", "java_binary"]

_HERE = Path(__file__).resolve().parent
_POM = _HERE / "pom.xml"
_LOG4J_CONFIG = _HERE / "log4j2.properties"
_JAR_MARKER = ".pom-sha256"
_MIN_JAVA = 17  # Kafka 4.x brokers need Java 17 or newer.
_MVN_TIMEOUT_S = 900.0  # A first download of ~90 jars on a slow connection.
_POLL_INTERVAL_S = 0.25
# Heap of the broker JVM. The dev laptop also runs PostgreSQL and about ten Python
# processes on two cores; 512 MiB holds a few hundred partitions comfortably.
_HEAP = "512m"
_JVM_OPTS = (
    f"-Xmx{_HEAP}",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    # A broker that ran out of heap limps on with failing threads; dead, it is visible
    # to the supervisor and restarts clean.
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)

T = TypeVar("T")


# Brokers stop cleanly on SIGTERM (controlled shutdown).
_RUNNING = ChildRegistry(stop_signal=signal.SIGTERM)


class LocalKafkaError(RuntimeError):
    """The local Kafka broker could not be installed, started or configured."""


def ensure_kafka_jars(cache_dir: Path) -> Path:
    """Download the broker jars with Maven unless the cache already holds them.

    The jars land in ``cache_dir/lib`` together with a marker recording the hash of
    ``pom.xml``; Maven runs only when that marker is missing or stale (a new Kafka
    version), so later calls cost a file read. Concurrent callers (pytest workers) are
    serialized with a lock file.

    Args:
        cache_dir: Directory for the jars; created if missing.

    Returns:
        The directory with all jars, to pass as ``LocalKafka(lib_dir=...)``.

    Raises:
        LocalKafkaError: ``mvn`` or ``java`` is missing or too old, or Maven failed.
    """
    cache_dir = Path(cache_dir).absolute()
    pom = _POM.read_bytes()
    digest = hashlib.sha256(pom).hexdigest()
    lib_dir = cache_dir / "lib"
    if _jars_current(lib_dir, digest):
        return lib_dir
    java_binary()
    mvn = shutil.which("mvn")
    if mvn is None:
        raise LocalKafkaError(
            "`mvn` was not found on PATH; it downloads the Kafka broker. Install Apache "
            "Maven (Debian/Ubuntu: `sudo apt-get install maven`, macOS: `brew install maven`)"
        )
    cache_dir.mkdir(parents=True, exist_ok=True)
    # The waiter gives the holder its whole Maven budget plus a margin.
    with _file_lock(cache_dir / ".lock", _MVN_TIMEOUT_S + 60):
        if _jars_current(lib_dir, digest):
            return lib_dir
        # Maven copies into a staging directory that replaces lib/ only when complete,
        # so an interrupted download never looks like a usable broker.
        staging = cache_dir / "lib.partial"
        shutil.rmtree(staging, ignore_errors=True)
        pom_copy = cache_dir / "pom.xml"
        pom_copy.write_bytes(pom)
        cmd = [
            mvn,
            "-q",
            "-B",
            "-f",
            str(pom_copy),
            "dependency:copy-dependencies",
            f"-DoutputDirectory={staging}",
        ]
        try:
            result = subprocess.run(
                cmd,
                cwd=cache_dir,
                env=_java_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
                timeout=_MVN_TIMEOUT_S,
            )
        except subprocess.TimeoutExpired:
            raise LocalKafkaError(
                f"mvn did not finish downloading the Kafka jars in {_MVN_TIMEOUT_S:.0f}s"
            ) from None
        if result.returncode != 0 or not any(staging.glob("kafka_*.jar")):
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise LocalKafkaError(
                f"mvn could not download the Kafka jars (exit {result.returncode}):\n"
                f"{output[-4000:]}"
            )
        (staging / _JAR_MARKER).write_text(digest)
        shutil.rmtree(lib_dir, ignore_errors=True)
        staging.rename(lib_dir)
    return lib_dir


@functools.cache
def java_binary() -> str:
    """Locate a Java 17+ runtime: ``$JAVA_HOME/bin/java``, else ``java`` on PATH.

    Returns:
        Path of the ``java`` executable.

    Raises:
        LocalKafkaError: No java, or one older than 17, naming what to install.
    """
    java_home = os.environ.get("JAVA_HOME")
    candidate = Path(java_home) / "bin" / "java" if java_home else None
    java = str(candidate) if candidate and candidate.is_file() else shutil.which("java")
    install_hint = (
        "Install a Java 17+ runtime (Debian/Ubuntu: `sudo apt-get install "
        "openjdk-17-jre-headless`, macOS: `brew install openjdk@17`)"
    )
    if java is None:
        raise LocalKafkaError(f"`java` was not found; the Kafka broker needs it. {install_hint}")
    try:
        probe = subprocess.run([java, "-version"], capture_output=True, check=False, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise LocalKafkaError(f"could not run {java} -version: {exc}") from None
    # `java -version` prints e.g. 'openjdk version "17.0.15"' or '"1.8.0_392"' on stderr.
    match = re.search(r'version "(\d+)(?:\.(\d+))?', probe.stderr.decode(errors="replace"))
    if match is None:
        raise LocalKafkaError(f"could not tell the version of {java}. {install_hint}")
    major = int(match.group(1))
    if major == 1 and match.group(2):
        major = int(match.group(2))
    if major < _MIN_JAVA:
        raise LocalKafkaError(f"{java} is Java {major}, Kafka needs {_MIN_JAVA}+. {install_hint}")
    return java


class LocalKafka:
    """One KRaft Kafka node (broker and controller in one JVM) run as a child process.

    State lives in ``data_dir``: ``server.properties``, the cluster id, the storage
    (``data_dir/kraft``) and the process output (``data_dir/kafka.log``). Starting again
    on the same directory keeps every topic and message.

    Args:
        data_dir: Directory of this node; created if missing.
        lib_dir: Jar directory returned by :func:`ensure_kafka_jars`.
        port: Client (PLAINTEXT) port on 127.0.0.1.
        controller_port: KRaft controller port on 127.0.0.1.
        node_id: This node's id.
        cluster: ``(node_id, port, controller_port)`` of every node, this one included,
            for a multi-node cluster on loopback. None means a single-node cluster.
        default_partitions: ``num.partitions`` for topics created without a count.
        replication_factor: ``default.replication.factor`` for new topics.
        min_insync_replicas: ``min.insync.replicas`` for all topics.

    Raises:
        ValueError: Inconsistent cluster layout or replication settings.
    """

    def __init__(
        self,
        data_dir: Path,
        *,
        lib_dir: Path,
        port: int,
        controller_port: int,
        node_id: int = 1,
        cluster: list[tuple[int, int, int]] | None = None,
        default_partitions: int = 3,
        replication_factor: int = 1,
        min_insync_replicas: int = 1,
    ) -> None:
        nodes = sorted(cluster) if cluster else [(node_id, port, controller_port)]
        if (node_id, port, controller_port) not in nodes:
            raise ValueError(
                f"cluster {nodes} does not list this node ({node_id}, {port}, {controller_port})"
            )
        if len({node for node, _, _ in nodes}) != len(nodes):
            raise ValueError(f"duplicate node ids in cluster {nodes}")
        if not 1 <= replication_factor <= len(nodes):
            raise ValueError(
                f"replication_factor must be in 1..{len(nodes)}, not {replication_factor}"
            )
        if not 1 <= min_insync_replicas <= replication_factor:
            raise ValueError(
                f"min_insync_replicas {min_insync_replicas} must be within "
                f"1..replication_factor ({replication_factor})"
            )
        if default_partitions < 1:
            raise ValueError("default_partitions must be at least 1")
        self.data_dir = Path(data_dir).absolute()
        self.lib_dir = Path(lib_dir).absolute()
        self.port = port
        self.controller_port = controller_port
        self.node_id = node_id
        self.nodes = nodes
        self.default_partitions = default_partitions
        self.replication_factor = replication_factor
        self.min_insync_replicas = min_insync_replicas
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """``host:port`` of this node's client listener."""
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        """The JVM's process id while it runs, else None."""
        return self._proc.pid if self.running and self._proc else None

    @property
    def running(self) -> bool:
        """Whether the JVM started by this object is still alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def log_path(self) -> Path:
        """File receiving the broker's stdout and stderr."""
        return self.data_dir / "kafka.log"

    def start(self, *, timeout_s: float = 60.0, wait: bool = True) -> None:
        """Format the storage on first use, launch the broker, and wait until it serves.

        Does nothing if the broker is already running.

        Args:
            timeout_s: Upper bound for formatting plus startup.
            wait: Whether to wait for readiness. Nodes of a multi-node cluster cannot
                become ready alone (the controllers need a quorum), so launch them all
                with ``wait=False`` and then call :meth:`wait_until_ready` on each.

        Raises:
            LocalKafkaError: Formatting failed, or the broker exited or did not become
                ready in time; the message carries the end of its log.
        """
        if self.running:
            return
        deadline = time.monotonic() + timeout_s
        java = java_binary()
        if not any(self.lib_dir.glob("kafka_*.jar")):
            raise LocalKafkaError(
                f"no Kafka jars in {self.lib_dir}; pass the directory ensure_kafka_jars returns"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        properties = self.data_dir / "server.properties"
        properties.write_text(self._server_properties())
        if not (self._storage_dir / "meta.properties").exists():
            self._format(java, properties, deadline)
        cmd = [
            java,
            *_JVM_OPTS,
            f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
            "-cp",
            str(self.lib_dir / "*"),
            "kafka.Kafka",
            str(properties),
        ]
        with self.log_path.open("ab") as log:
            log.write(f"--- datasync: starting kafka node {self.node_id} ---\n".encode())
            log.flush()
            # A session of its own: a Ctrl-C in the terminal must reach our supervisor,
            # which stops the services in order, instead of hitting the JVM directly.
            self._proc = subprocess.Popen(
                cmd,
                cwd=self.data_dir,
                env=_java_env(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _RUNNING.add(self._proc)
        if wait:
            try:
                self.wait_until_ready(timeout_s=max(0.0, deadline - time.monotonic()))
            except BaseException:
                self.kill()
                raise

    def wait_until_ready(self, *, timeout_s: float = 60.0) -> None:
        """Wait until this node is a registered, unfenced broker that answers metadata.

        Args:
            timeout_s: How long to wait.

        Raises:
            LocalKafkaError: The broker is not running, exited, or was not ready in time.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            proc = self._proc
            if proc is None or proc.poll() is not None:
                code = None if proc is None else proc.returncode
                self._forget()
                raise LocalKafkaError(
                    f"kafka node {self.node_id} is not running (exit code {code}); "
                    f"end of {self.log_path}:\n{_tail(self.log_path)}"
                )
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LocalKafkaError(
                    f"kafka node {self.node_id} was not ready within {timeout_s:.0f}s; "
                    f"end of {self.log_path}:\n{_tail(self.log_path)}"
                )
            if self._is_ready(min(remaining, 5.0)):
                return
            time.sleep(_POLL_INTERVAL_S)

    def stop(self, *, timeout_s: float = 30.0) -> None:
        """Shut the broker down cleanly (SIGTERM: controlled shutdown, logs flushed).

        The broker is killed with SIGKILL only if it has not exited after ``timeout_s``.

        Args:
            timeout_s: How long to wait for the clean shutdown.
        """
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill()
                return
        self._forget()

    def kill(self) -> None:
        """Kill the broker with SIGKILL, like a crash; the next start recovers its logs."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            # SIGKILL cannot be ignored; the bound only guards against a hung kernel.
            proc.wait(timeout=30)
        self._forget()

    # -- internals ---------------------------------------------------------------------

    def _forget(self) -> None:
        if self._proc is not None:
            _RUNNING.discard(self._proc)
        self._proc = None

    @property
    def _storage_dir(self) -> Path:
        return self.data_dir / "kraft"

    def _server_properties(self) -> str:
        size = len(self.nodes)
        internal_replication = min(3, size)
        # A transaction/share-state write needs this many replicas in sync; a value above
        # the cluster size would make every such write fail on a small cluster.
        internal_min_isr = min(2, internal_replication)
        voters = ",".join(f"{node}@127.0.0.1:{cport}" for node, _, cport in self.nodes)
        settings = {
            "process.roles": "broker,controller",
            "node.id": self.node_id,
            "controller.quorum.voters": voters,
            "listeners": (
                f"PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}"
            ),
            "advertised.listeners": f"PLAINTEXT://127.0.0.1:{self.port}",
            "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
            "inter.broker.listener.name": "PLAINTEXT",
            "controller.listener.names": "CONTROLLER",
            "log.dirs": self._storage_dir,
            "num.partitions": self.default_partitions,
            "default.replication.factor": self.replication_factor,
            "min.insync.replicas": self.min_insync_replicas,
            # Topics are part of the product's contract and created on purpose; a typo
            # in a topic name must fail loudly instead of creating a new topic.
            "auto.create.topics.enable": "false",
            # Consumers should get partitions at once rather than after the 3 s default,
            # which only helps big groups that join gradually.
            "group.initial.rebalance.delay.ms": 0,
            "broker.heartbeat.interval.ms": 1000,
            "broker.session.timeout.ms": 4000,
            "offsets.topic.replication.factor": internal_replication,
            "transaction.state.log.replication.factor": internal_replication,
            "transaction.state.log.min.isr": internal_min_isr,
            "share.coordinator.state.topic.replication.factor": internal_replication,
            "share.coordinator.state.topic.min.isr": internal_min_isr,
        }
        lines = [
            "# Written by datasync.local.kafka on every start; edits are overwritten.",
            *(f"{key}={value}" for key, value in settings.items()),
        ]
        return "\n".join(lines) + "\n"

    def _cluster_id(self) -> str:
        """The cluster id, fixed in ``data_dir`` once chosen.

        Nodes of one cluster must share it, so for several nodes it is derived from the
        cluster layout; a single node gets a random one.
        """
        path = self.data_dir / "cluster.id"
        if path.exists():
            return path.read_text().strip()
        if len(self.nodes) > 1:
            layout = ",".join(f"{n}:{p}:{c}" for n, p, c in self.nodes).encode()
            raw = hashlib.sha256(b"datasync-local-kafka:" + layout).digest()[:16]
        else:
            raw = uuid.uuid4().bytes
        # Kafka's Uuid text form: 16 bytes in URL-safe base64 without padding (22 chars).
        cluster_id = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        path.write_text(cluster_id + "\n")
        return cluster_id

    def _format(self, java: str, properties: Path, deadline: float) -> None:
        cmd = [
            java,
            # A short-lived tool: skipping the optimizing JIT makes it start faster.
            "-XX:TieredStopAtLevel=1",
            "-Xmx256m",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={_LOG4J_CONFIG}",
            "-cp",
            str(self.lib_dir / "*"),
            "kafka.tools.StorageTool",
            "format",
            # One argument: an id starting with "-" (URL-safe base64 can) would otherwise
            # be taken for an option.
            f"--cluster-id={self._cluster_id()}",
            "--config",
            str(properties),
            # Idempotent: a node whose storage is already formatted is left alone.
            "--ignore-formatted",
        ]
        try:
            result = subprocess.run(
                cmd,
                cwd=self.data_dir,
                env=_java_env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                check=False,
                timeout=max(1.0, deadline - time.monotonic()),
            )
        except subprocess.TimeoutExpired:
            raise LocalKafkaError(f"formatting {self._storage_dir} timed out") from None
        if result.returncode != 0:
            output = (result.stdout + result.stderr).decode(errors="replace")
            raise LocalKafkaError(f"formatting {self._storage_dir} failed:\n{output[-4000:]}")

    def _is_ready(self, timeout_s: float) -> bool:
        # A plain connect first: the admin client logs an error for every refused
        # connection, which would fill the caller's log while the JVM boots.
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=min(timeout_s, 1.0)):
                pass
        except OSError:
            return False

        async def probe() -> bool:
            admin = AIOKafkaAdminClient(
                bootstrap_servers=self.bootstrap_servers,
                request_timeout_ms=max(1000, int(timeout_s * 1000)),
            )
            try:
                await admin.start()
                cluster = await admin.describe_cluster()
            finally:
                await admin.close()
            # A broker is listed in metadata only once the controller has unfenced it,
            # that is, when it can lead partitions.
            return any(broker["node_id"] == self.node_id for broker in cluster["brokers"])

        try:
            return _run_coroutine(probe, timeout_s)
        except (KafkaError, OSError, TimeoutError):
            # Not ready yet: refused, timed out, or the broker still loading metadata.
            return False


async def ensure_topics(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    *,
    replication_factor: int = 1,
    config: Mapping[str, str] | None = None,
    timeout_s: float = 30.0,
) -> None:
    """Create the missing topics and wait until every partition of all of them has a leader.

    Idempotent: existing topics are left as they are (partition count and config are
    not changed), and a concurrent creation of the same topic is not an error.
    Transient failures (a broker of the cluster down or still starting) are retried
    until ``timeout_s``.

    Args:
        bootstrap_servers: ``host:port[,host:port...]`` of the cluster.
        topics: Topic name to partition count.
        replication_factor: Replicas per partition of the new topics.
        config: Topic-level configuration of the new topics (e.g. ``cleanup.policy``).
        timeout_s: Upper bound for the whole operation.

    Raises:
        LocalKafkaError: Kafka refused a topic, or the topics were not ready in time.
    """
    if not topics:
        return
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        try:
            await asyncio.wait_for(
                _ensure_topics_once(
                    bootstrap_servers, topics, replication_factor, config or {}, deadline
                ),
                max(0.1, deadline - loop.time()),
            )
            return
        except (KafkaError, TimeoutError) as exc:
            transient = isinstance(exc, (TimeoutError, KafkaTimeoutError)) or getattr(
                exc, "retriable", False
            )
            if not transient or loop.time() >= deadline:
                raise LocalKafkaError(
                    f"could not ensure topics {sorted(topics)} on {bootstrap_servers}: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
            await asyncio.sleep(_POLL_INTERVAL_S)


async def _ensure_topics_once(
    bootstrap_servers: str,
    topics: Mapping[str, int],
    replication_factor: int,
    config: Mapping[str, str],
    deadline: float,
) -> None:
    loop = asyncio.get_running_loop()
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers,
        request_timeout_ms=max(1000, int((deadline - loop.time()) * 1000)),
    )
    try:
        await admin.start()
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions, replication_factor, topic_configs=dict(config))
            for name, partitions in topics.items()
            if name not in existing
        ]
        if missing:
            response = await admin.create_topics(missing)
            for topic, code, *rest in response.topic_errors:
                if code in (0, TopicAlreadyExistsError.errno):
                    continue
                error = for_code(code)
                message = f"creating topic {topic!r} failed: {rest[0] if rest else ''}"
                if error.retriable:
                    raise error(message)
                raise LocalKafkaError(f"{message} ({error.__name__})")
        await _wait_for_leaders(admin, list(topics), deadline)
    finally:
        await admin.close()


async def _wait_for_leaders(admin: Any, names: list[str], deadline: float) -> None:
    # CreateTopics returns once the controller has recorded the topic; brokers learn
    # about it a moment later. Producers sent at once would only see retries, but tests
    # and the supervisor want "ready" to mean ready.
    loop = asyncio.get_running_loop()
    while True:
        described: list[dict[str, Any]] = await admin.describe_topics(names)
        pending = [
            topic["topic"]
            for topic in described
            if topic["error_code"] != 0
            or not topic["partitions"]
            or any(part["leader"] < 0 for part in topic["partitions"])
        ]
        if not pending:
            return
        if loop.time() >= deadline:
            raise LocalKafkaError(f"topics without a leader for every partition: {pending}")
        await asyncio.sleep(_POLL_INTERVAL_S)


def _run_coroutine(factory: Callable[[], Awaitable[T]], timeout_s: float) -> T:
    """Run a coroutine to completion from synchronous code, with a time bound.

    It runs on a fresh event loop in a worker thread, so this works both from plain
    code and from code already inside an event loop (pytest-asyncio, the supervisor),
    where ``asyncio.run`` would refuse.
    """

    async def bounded() -> T:
        return await asyncio.wait_for(factory(), timeout_s)

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, bounded()).result()


def _java_env() -> dict[str, str]:
    # JAVA_TOOL_OPTIONS / _JAVA_OPTIONS from the developer's shell would silently
    # override the heap limit chosen above.
    hidden = {"JAVA_TOOL_OPTIONS", "_JAVA_OPTIONS", "JDK_JAVA_OPTIONS", "CLASSPATH"}
    return {key: value for key, value in os.environ.items() if key not in hidden}


def _jars_current(lib_dir: Path, digest: str) -> bool:
    marker = lib_dir / _JAR_MARKER
    try:
        return marker.read_text().strip() == digest
    except OSError:
        return False


@contextlib.contextmanager
def _file_lock(path: Path, timeout_s: float) -> Iterator[None]:
    deadline = time.monotonic() + timeout_s
    with path.open("a") as handle:
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise LocalKafkaError(
                        f"another process held {path} for {timeout_s:.0f}s"
                    ) from None
                time.sleep(_POLL_INTERVAL_S)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _tail(path: Path, max_bytes: int = 4000) -> str:
    try:
        with path.open("rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - max_bytes))
            return handle.read().decode(errors="replace")
    except OSError as exc:
        return f"(could not read log: {exc})"
