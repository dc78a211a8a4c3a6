"""Real Kafka (KRaft, from Maven Central jars) and PostgreSQL (Debian's packages) as local processes.

Used by `outrider up` and by the test fixtures when no Docker engine answers. Nothing here is a fake: each class
starts the real server, waits until it answers a real client, and stops it cleanly.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import glob
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CACHE = ROOT / ".cache"
KAFKA_LIBS = CACHE / "kafka" / "libs"


class StackError(RuntimeError):
    """A local server could not be installed, started or reached."""


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A TCP port on loopback that nothing holds right now, below the kernel's ephemeral range.

    A port the kernel picked (bind to 0) comes from the range outgoing connections use too, so a service's own
    Kafka or PostgreSQL connection, opened before its HTTP server binds, could take it first. Ports are also never
    handed out twice by one process.
    """
    try:
        first_ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        first_ephemeral = 32768
    rng = random.Random()
    for _ in range(1000):
        port = rng.randrange(10000, max(first_ephemeral, 10001))
        if port in _HANDED_OUT:
            continue
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    raise StackError("no free TCP port below the ephemeral range")


def _wait(what: str, check: object, timeout: float, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            if check():  # type: ignore[operator]
                return
        except StackError:
            raise  # the server died: waiting longer cannot help
        except Exception as exc:
            last = exc
        time.sleep(0.2)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise StackError(f"{what} did not answer within {timeout:.0f}s (last error: {last!r})\n{tail}")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def runs(pid: int, marker: bytes) -> bool:
    """Whether process `pid` is there and its command line holds `marker`: a pid saved before a reboot may name
    another program now."""
    try:
        return marker in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def stop_pid(pid: int, timeout: float = 30.0, *, marker: bytes | None = None) -> None:
    """SIGTERM the process group of `pid`, then SIGKILL it if it is still there after `timeout`; with `marker`, only
    when the process's command line holds it (see `runs`)."""
    if marker is not None and not runs(pid, marker):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _pid_alive(pid):
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    if _pid_alive(pid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


@dataclass(frozen=True)
class SaslSsl:
    """A listener that takes only TLS clients authenticated by SCRAM-SHA-512, as a production Kafka may: clients'
    security settings are then tried for real, not only read back.

    `keystore` is a PEM file holding the listener's certificate chain and its unencrypted PKCS#8 private key; the
    certificate must name 127.0.0.1 (subjectAltName), the address advertised.
    """

    users: dict[str, str]
    keystore: Path
    port: int = field(default_factory=free_port)

    def __post_init__(self) -> None:
        # StorageTool's --add-scram syntax has no escaping for these.
        if odd := [u for u in (*self.users, *self.users.values()) if re.search(r'[\s,\[\]="]', u) or not u]:
            raise StackError(f'SCRAM names and passwords cannot be empty or hold spaces or ,[]=": {len(odd)} do')

    def properties(self) -> str:
        """server.properties lines of the listener named SASL_SSL (added to `listeners` by `Kafka`)."""
        prefix = "listener.name.sasl_ssl"
        return (
            f"{prefix}.sasl.enabled.mechanisms=SCRAM-SHA-512\n"
            f"{prefix}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule "
            "required;\n"
            f"{prefix}.ssl.keystore.type=PEM\n"
            f"{prefix}.ssl.keystore.location={self.keystore}\n"
        )

    def scram_args(self) -> list[str]:
        """StorageTool `format` options that create the users (KRaft keeps SCRAM credentials in its metadata log)."""
        return [f"--add-scram=SCRAM-SHA-512=[name={name},password={password}]" for name, password in self.users.items()]


@dataclass
class Kafka:
    """A single-node Apache Kafka broker in KRaft mode (broker and controller in one JVM)."""

    home: Path
    port: int = field(default_factory=free_port)
    controller_port: int = field(default_factory=free_port)
    heap: str = "512m"
    pid: int | None = None
    sasl_ssl: SaslSsl | None = None  # an extra listener; the PLAINTEXT one stays (inter-broker, readiness)
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def bootstrap_servers(self) -> str:
        """`host:port` for clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def sasl_ssl_bootstrap_servers(self) -> str:
        """`host:port` of the SASL_SSL listener."""
        if self.sasl_ssl is None:
            raise StackError("this broker has no SASL_SSL listener")
        return f"127.0.0.1:{self.sasl_ssl.port}"

    def _java_cmd(self, main: str, *args: str) -> list[str]:
        if not KAFKA_LIBS.is_dir() or not any(KAFKA_LIBS.glob("kafka_*.jar")):
            raise StackError(f"Kafka jars missing in {KAFKA_LIBS}: run scripts/bootstrap.sh")
        java = shutil.which("java") or "java"
        return [
            java,
            f"-Xmx{self.heap}",
            f"-Xms{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j.configuration=file:{self.home / 'log4j.properties'}",
            "-cp",
            f"{KAFKA_LIBS}/*",
            main,
            *args,
        ]

    def start(self, timeout: float = 90.0) -> None:
        """Write the config, format storage once, start the broker and wait until it serves metadata."""
        self.home.mkdir(parents=True, exist_ok=True)
        data = self.home / "data"
        (self.home / "log4j.properties").write_text(
            "log4j.rootLogger=WARN, file\n"
            "log4j.logger.kafka.server.KafkaServer=INFO\n"
            "log4j.logger.kafka.server.KafkaRaftServer=INFO\n"
            "log4j.appender.file=org.apache.log4j.FileAppender\n"
            f"log4j.appender.file.File={self.home / 'kafka.log'}\n"
            "log4j.appender.file.layout=org.apache.log4j.PatternLayout\n"
            "log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        )
        config = self.home / "server.properties"
        listeners = f"PLAINTEXT://127.0.0.1:{self.port}"
        protocols = "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT"
        if self.sasl_ssl:
            listeners += f",SASL_SSL://127.0.0.1:{self.sasl_ssl.port}"
            protocols += ",SASL_SSL:SASL_SSL"
        config.write_text(
            f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{self.controller_port}
listeners={listeners},CONTROLLER://127.0.0.1:{self.controller_port}
advertised.listeners={listeners}
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map={protocols}
log.dirs={data}
num.partitions=4
auto.create.topics.enable=true
message.max.bytes=8388608
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
log.retention.hours=24
"""
            + (self.sasl_ssl.properties() if self.sasl_ssl else "")
        )
        if not (data / "meta.properties").exists():
            # `=` form: a random id may start with "-", which the tool would take for an option
            cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()
            scram = self.sasl_ssl.scram_args() if self.sasl_ssl else []
            subprocess.run(
                self._java_cmd(
                    "kafka.tools.StorageTool", "format", f"--cluster-id={cluster_id}", "-c", str(config), *scram
                ),
                check=True,
                capture_output=True,
                timeout=120,
            )
        with (self.home / "stdout.log").open("ab") as out:
            proc = subprocess.Popen(
                self._java_cmd("kafka.Kafka", str(config)),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid, self._proc = proc.pid, proc
        (self.home / "pid").write_text(str(proc.pid))

        def ready() -> bool:
            if proc.poll() is not None:
                raise StackError(f"Kafka exited with code {proc.returncode}")
            with socket.socket() as s:  # cheap check first: aiokafka logs every refused connection
                if s.connect_ex(("127.0.0.1", self.port)) != 0:
                    return False
            return asyncio.run(_kafka_answers(self.bootstrap_servers))

        _wait("Kafka", ready, timeout, self.home / "kafka.log")

    def stop(self) -> None:
        """Stop the broker cleanly (controlled shutdown), killing it only if it hangs."""
        pid = self.pid or _read_pid(self.home / "pid")
        if pid:
            stop_pid(pid, marker=b"kafka.Kafka")
        if self._proc:
            self._proc.wait(5)  # reap it
        (self.home / "pid").unlink(missing_ok=True)
        self.pid = None


async def _kafka_answers(bootstrap: str) -> bool:
    from aiokafka.admin import AIOKafkaAdminClient

    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=3000)
    try:
        await admin.start()
        await admin.describe_cluster()
        return True
    finally:
        await admin.close()


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text())
    except (FileNotFoundError, ValueError):
        return None


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if found:
        return found[-1]
    path = shutil.which(name)
    if not path:
        raise StackError(f"PostgreSQL's {name} not found: run scripts/bootstrap.sh (installs postgresql-15)")
    return path


@dataclass
class Postgres:
    """A PostgreSQL cluster in a data directory of its own, run as the `postgres` user when we are root."""

    home: Path
    port: int = field(default_factory=free_port)
    user: str = "outrider"
    database: str = "outrider"
    durable: bool = True

    @property
    def dsn(self) -> str:
        """DSN of the default database."""
        return self.dsn_for(self.database)

    def dsn_for(self, database: str) -> str:
        """DSN of `database` on this server."""
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _as_owner(self, cmd: list[str]) -> list[str]:
        # initdb and pg_ctl refuse to run as root.
        return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd

    def start(self, timeout: float = 60.0) -> None:
        """initdb once, start the server on loopback, create the default database, wait until it answers."""
        data = self.home / "data"
        self.home.mkdir(parents=True, exist_ok=True)
        if os.geteuid() == 0:
            shutil.chown(self.home, "postgres", "postgres")
            # runuser's user must be able to reach the directory through its parents.
            opened = []
            for parent in self.home.parents:
                if parent == Path("/"):
                    break
                mode = parent.stat().st_mode
                if not mode & 0o001:
                    os.chmod(parent, mode | 0o001)
                    opened.append(str(parent))
            if opened:  # a change to directories outside the stack's own: said, not done silently
                print(f"added o+x to {', '.join(opened)} so the postgres user reaches {self.home}", file=sys.stderr)
        if not (data / "PG_VERSION").exists():
            subprocess.run(
                self._as_owner(
                    [
                        _pg_bin("initdb"),
                        "-D",
                        str(data),
                        "-A",
                        "trust",
                        "-U",
                        self.user,
                        "-E",
                        "UTF8",
                        "--no-instructions",
                    ]
                ),
                check=True,
                capture_output=True,
                timeout=120,
            )
        options = f"-p {self.port} -k {self.home} -c listen_addresses=127.0.0.1 -c max_connections=200"
        if not self.durable:
            options += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        log = self.home / "postgres.log"
        result = subprocess.run(
            self._as_owner(
                [
                    _pg_bin("pg_ctl"),
                    "-D",
                    str(data),
                    "-o",
                    options,
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "start",
                ]
            ),
            capture_output=True,
            timeout=timeout + 10,
        )
        if result.returncode != 0:
            tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
            raise StackError(f"pg_ctl start failed: {result.stderr.decode(errors='replace')}\n{tail}")
        _wait("PostgreSQL", lambda: asyncio.run(self._ensure_database()), timeout, log)

    async def _ensure_database(self) -> bool:
        import asyncpg

        conn = await asyncpg.connect(self.dsn_for("postgres"), timeout=3)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", self.database)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{self.database}"')
        finally:
            await conn.close()
        return True

    def stop(self) -> None:
        """Fast shutdown: open transactions roll back, nothing half-written."""
        data = self.home / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run(
                self._as_owner([_pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"]),
                capture_output=True,
                timeout=60,
            )


SERVICES = ("tracker", "ingest", "analyzer", "notifier")


@dataclass
class Service:
    """One Outrider service run as `python -m outrider_<name>` with its own environment."""

    name: str
    port: int
    env: dict[str, str]
    log: Path
    pid: int | None = None
    _proc: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        """Base URL of the service's HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Spawn the process in a session of its own (so `stop` reaches its children too)."""
        import sys

        env = {**os.environ, **self.env, "OUTRIDER_HTTP_PORT": str(self.port)}
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", f"outrider_{self.name}"],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        self.pid = proc.pid
        self._proc = proc

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Wait until `/readyz` answers 200 (broker and database reachable)."""
        import httpx

        proc = self._proc
        assert proc is not None, "start() first"

        def ready() -> bool:
            if proc.poll() is not None:
                raise StackError(f"{self.name} exited with code {proc.returncode}")
            return httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200

        _wait(f"{self.name} /readyz", ready, timeout, self.log)

    def metric(self, name: str) -> float:
        """Sum of one metric's samples on this service's /metrics (0 when it does not answer)."""
        return metric(self.url, name)

    def rss_mb(self) -> tuple[float, float]:
        """(current, peak) resident MB of the process; zeros when it is not running."""
        return rss_mb(self.pid)

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM (finish in-flight work), SIGKILL only after `timeout`; returns the exit code when known."""
        if self.pid:
            stop_pid(self.pid, timeout)
            self.pid = None
        return self._proc.wait(timeout) if self._proc else None


def rss_mb(pid: int | None) -> tuple[float, float]:
    """(current, peak) resident MB of a live process; zeros when it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except (OSError, TypeError):
        return 0.0, 0.0
    found = dict(re.findall(r"^(VmRSS|VmHWM):\s+(\d+) kB", status, re.M))
    return int(found.get("VmRSS", 0)) / 1024, int(found.get("VmHWM", 0)) / 1024


def metric(url: str, name: str) -> float:
    """Sum of one metric's samples (every label set) on a service's /metrics; 0 when it does not answer."""
    import httpx

    try:
        text = httpx.get(f"{url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0
    return sum(float(v) for v in re.findall(rf"^{re.escape(name)}(?:{{[^}}]*}})? (\S+)$", text, re.M))
