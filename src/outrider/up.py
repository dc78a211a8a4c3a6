"""`outrider up` / `outrider down`: the whole stack on loopback, for trying Outrider on one machine."""

import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from rich.table import Table

from outrider.devstack import ROOT, SERVICES, Kafka, Postgres, Service, StackError, free_port, stop_pid
from outrider.stats.render import stderr_console, stdout_console

STATE = ROOT / ".outrider"
SAMPLE = ROOT / "samples" / "production_json.log"
GENERATOR = ROOT / "bench" / "generate.py"
DEMO_GENERATED = ("api_json", "gitaly", "sidekiq")  # with SAMPLE, the four GitLab log types
DEMO_LOG_MB = 0.15  # about SAMPLE's size
ADMIN_TOKEN_FILE = STATE / "admin-token"
DEFAULT_PORTS = {
    "tracker": 8003, "ingest": 8001, "analyzer": 8002, "notifier": 8004, "kafka": 19092, "postgres": 15432,
    "slack": 8009, "prometheus": 9090, "grafana": 3000,
}  # fmt: skip
RULES = ROOT / "deploy" / "prometheus" / "outrider-rules.yaml"
console = stderr_console()


def _port(name: str) -> int:
    """The usual port for `name` when it is free, else any free one."""
    import socket

    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", DEFAULT_PORTS[name])) != 0:
            return DEFAULT_PORTS[name]
    return free_port()


@dataclass
class Stack:
    """What `up` started, persisted in `.outrider/stack.json` so `down` can stop it."""

    kafka_port: int
    postgres_port: int
    kafka_pid: int | None
    services: dict[str, dict[str, int]]

    def save(self) -> None:
        (STATE / "stack.json").write_text(json.dumps(self.__dict__, indent=2))

    @classmethod
    def load(cls) -> "Stack | None":
        path = STATE / "stack.json"
        return cls(**json.loads(path.read_text())) if path.exists() else None


def stack_port(name: str) -> int | None:
    """The port `name` (a service, or kafka) of the running `up` listens on (not always the usual one), if any."""
    try:
        stack = Stack.load()
        port = (stack.kafka_port if name == "kafka" else stack.services[name]["port"]) if stack else None
    except (OSError, ValueError, TypeError, KeyError):  # none yet, or a file not of `up`'s writing
        return None
    return port if isinstance(port, int) else None


def stack_tracker() -> str | None:
    """The URL of the tracker the running `up` started (its port may not be the usual one), if it has started one."""
    port = stack_port("tracker")
    return f"http://127.0.0.1:{port}" if port else None


def up() -> None:
    """Start PostgreSQL, Kafka and the four services; create a demo engagement and ship the demo logs to it.

    All or nothing: when a step fails (or Ctrl-C), what was started is stopped again before the error is raised, so
    that the next `up` does not find a server of the last one holding its data directory.
    """
    if Stack.load() is not None:
        raise StackError("a stack is already running (see .outrider/stack.json): run `make down` first")
    STATE.mkdir(exist_ok=True)
    try:
        _up()
    except BaseException:
        console.print("`up` did not finish: stopping what it started (logs stay in .outrider/logs)", style="red")
        down()
        raise


def _up() -> None:
    with console.status("Starting PostgreSQL…"):
        pg = Postgres(STATE / "postgres", port=_port("postgres"))
        pg.start()
    with console.status("Starting Kafka (KRaft)…"):
        kafka = Kafka(STATE / "kafka", port=_port("kafka"))
        kafka.start()
    # Slack cannot be reached from here: the notifier posts to the local stand-in for its Web API.
    slack_port = _port("slack")
    slack_url = f"http://127.0.0.1:{slack_port}"
    slack = subprocess.Popen(
        [sys.executable, "-m", "outrider.slack_local", str(slack_port)],
        stdout=(STATE / "slack.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    stack = Stack(kafka.port, pg.port, kafka.pid, {"slack": {"pid": slack.pid, "port": slack_port}})
    stack.save()  # from here on `down` (also after a failure below) knows every process to stop
    env = {
        "OUTRIDER_KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "OUTRIDER_DATABASE_URL": pg.dsn,
        "OUTRIDER_SLACK_TOKEN": "xoxb-local-demo",
        "OUTRIDER_SLACK_API_URL": f"{slack_url}/api/",
    }
    # The tracker's bootstrap admin token: the CLI reads it from here; mint named tokens with it (POST /v1/api-tokens).
    admin_token = "otr_admin_" + secrets.token_urlsafe(32)
    ADMIN_TOKEN_FILE.touch(mode=0o600)
    ADMIN_TOKEN_FILE.write_text(admin_token)
    services = {
        n: Service(n, _port(n), {**env, "OUTRIDER_ADMIN_TOKEN": admin_token} if n == "tracker" else env,
                   STATE / "logs" / f"{n}.log")
        for n in SERVICES
    }  # fmt: skip
    for name, service in services.items():
        service.start()
        assert service.pid is not None
        stack.services[name] = {"pid": service.pid, "port": service.port}
        stack.save()
    with console.status("Waiting for every /readyz…"):
        for service in services.values():
            service.wait_ready()
    with console.status("Starting Prometheus (scraping every service, with the alert rules)…"):
        prometheus_url = start_prometheus(services, stack)
    with console.status("Starting Grafana if it is installed…"):
        grafana_url = start_grafana(prometheus_url, pg, stack)

    tracker, ingest = services["tracker"].url, services["ingest"].url
    admin = {"Authorization": f"Bearer {admin_token}"}
    engagement = (
        httpx.post(
            f"{tracker}/v1/engagements",
            json={"name": "Demo: GitLab 10k reference architecture", "customer": "Demo Co", "slack_channel": "#demo"},
            headers=admin,
        )
        .raise_for_status()
        .json()
    )
    token = (
        httpx.post(f"{tracker}/v1/engagements/{engagement['id']}/tokens", json={"name": "make up demo"}, headers=admin)
        .raise_for_status()
        .json()["token"]
    )
    status_url = f"{tracker}/v1/engagements/{engagement['id']}/stats"
    logs = demo_logs(STATE / "samples")
    with console.status(f"Shipping {', '.join(p.name for p in logs.values())} and waiting for their stats…"):
        lines = ship_demo_logs(ingest=ingest, tracker=tracker, engagement_id=engagement["id"], token=token,
                               admin_token=admin_token, logs=logs)  # fmt: skip

    # A touchpoint tomorrow: its reminder (24 h ahead by default) is due now, so the local Slack gets a message.
    tomorrow = (datetime.now(UTC) + timedelta(hours=23)).isoformat()
    httpx.post(
        f"{tracker}/v1/engagements/{engagement['id']}/touchpoints",
        json={"title": "Discovery follow-up: log findings", "scheduled_at": tomorrow},
        headers=admin,
    ).raise_for_status()
    with console.status("Waiting for the touchpoint reminder in the local Slack…"):
        deadline = time.monotonic() + 30
        while not (posted := httpx.get(f"{slack_url}/messages").json()) and time.monotonic() < deadline:
            time.sleep(0.3)

    table = Table(title="Outrider is up", title_justify="left")
    table.add_column("service")
    table.add_column("listens on (API docs at /docs, metrics at /metrics)")
    for name, service in services.items():
        table.add_row(name, service.url)
    table.add_row("kafka", kafka.bootstrap_servers)
    table.add_row("postgres", pg.dsn)
    table.add_row("local Slack", f"{slack_url}/messages")
    table.add_row(
        "prometheus", f"{prometheus_url} (targets: {prometheus_url}/targets, alerts: {prometheus_url}/alerts)"
    )
    table.add_row("grafana", grafana_url or "not installed (no Debian package): import dashboards/*.json elsewhere")
    out = stdout_console()
    out.print(table)
    shipped = ", ".join(f"{n} lines of {logs[t].name}" for t, n in lines.items())
    out.print(f"Shipped {shipped} to engagement {engagement['id']}.")
    out.print(f"Upload token for it (shown once): {token}")
    out.print(f"Tracker admin token: {ADMIN_TOKEN_FILE} (`outrider engagements` uses it; send it as a Bearer token)")
    out.print(f"Status with stats: [bold]{status_url}[/bold]")
    out.print(f"Status view: {tracker}/v1/engagements/{engagement['id']}/status")
    out.print(f"From a shell: [bold]uv run outrider engagements status {engagement['id']}[/bold] "
              "(`outrider engagements --help`: touchpoints, risks, hand-offs…)")  # fmt: skip
    out.print(f"Slack messages posted: {len(posted)} ({slack_url}/messages)")
    out.print(f"Logs: {STATE / 'logs'}    Stop everything: [bold]make down[/bold]")


def demo_logs(into: Path) -> dict[str, Path]:
    """A log of each GitLab log type, by type: the playbook's "logs received/analysed" criteria want all four.
    `samples/production_json.log`, and the other three written into `into` by bench's seeded generator."""
    into.mkdir(parents=True, exist_ok=True)
    logs = {"production_json": SAMPLE}
    for log_type in DEMO_GENERATED:
        logs[log_type] = into / f"{log_type}.log"
        subprocess.run(
            [sys.executable, str(GENERATOR), log_type, str(logs[log_type]), "--size-mb", str(DEMO_LOG_MB)],
            check=True, capture_output=True,
        )  # fmt: skip
    return logs


def ship_demo_logs(
    *, ingest: str, tracker: str, engagement_id: str, token: str, admin_token: str, logs: dict[str, Path]
) -> dict[str, int]:
    """Ship each log (by log type) to the engagement and wait until the tracker has stats of every type; the lines
    ingest accepted, by log type."""
    lines = {}
    for log_type, path in logs.items():
        accepted = httpx.post(
            f"{ingest}/v1/engagements/{engagement_id}/logs",
            params={"source": "demo", "file_id": str(path), "log_type": log_type},
            content=path.read_bytes(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        ).raise_for_status()
        lines[log_type] = accepted.json()["lines"]
    stats_url, admin = f"{tracker}/v1/engagements/{engagement_id}/stats", {"Authorization": f"Bearer {admin_token}"}

    def counted(log_type: str) -> bool:
        stats: dict[str, int] = httpx.get(stats_url, params={"log_type": log_type}, headers=admin).json()
        return stats["total_count"] > 0

    deadline = time.monotonic() + 60
    while waiting := [t for t in logs if not counted(t)]:
        if time.monotonic() > deadline:
            raise StackError(f"no stats of {', '.join(waiting)} 60 s after shipping; see {STATE / 'logs'}")
        time.sleep(0.3)
    return lines


def start_prometheus(services: dict[str, Service], stack: Stack) -> str:
    """Debian's Prometheus (installed by bootstrap) scraping the four services with deploy/prometheus's rules; waits
    until every target has been scraped up."""
    port = _port("prometheus")
    config = STATE / "prometheus.yml"
    jobs = [{"job_name": n, "static_configs": [{"targets": [f"127.0.0.1:{s.port}"]}]} for n, s in services.items()]
    config.write_text(json.dumps({  # JSON is YAML
        "global": {"scrape_interval": "5s", "evaluation_interval": "5s"},
        "rule_files": [str(RULES)],
        "scrape_configs": jobs,
    }, indent=2))  # fmt: skip
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={STATE / 'prometheus'}",
         f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=7d"],
        stdout=(STATE / "logs" / "prometheus.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    stack.services["prometheus"] = {"pid": proc.pid, "port": port}
    stack.save()
    url = f"http://127.0.0.1:{port}"

    def all_up() -> bool:
        if proc.poll() is not None:
            raise StackError(f"prometheus exited with code {proc.returncode}; see {STATE / 'logs' / 'prometheus.log'}")
        try:
            result = httpx.get(f"{url}/api/v1/query", params={"query": "up"}, timeout=2).json()["data"]["result"]
        except (httpx.HTTPError, KeyError, ValueError):
            return False
        return len(result) == len(services) and all(r["value"][1] == "1" for r in result)

    deadline = time.monotonic() + 60
    while not all_up():
        if time.monotonic() > deadline:
            raise StackError(f"prometheus has not scraped every service after 60 s: {url}/targets")
        time.sleep(0.5)
    return url


def start_grafana(prometheus_url: str, pg: Postgres, stack: Stack) -> str | None:
    """When a Grafana server is installed (`grafana` on PATH, its files in $GRAFANA_HOME or /usr/share/grafana), run it
    with dashboards/*.json provisioned and data sources for the local Prometheus and PostgreSQL; None otherwise.
    Not exercised here: Grafana cannot be installed on these machines (no Debian package, no reachable release)."""
    binary, home = shutil.which("grafana"), Path(os.environ.get("GRAFANA_HOME", "/usr/share/grafana"))
    if binary is None or not (home / "conf" / "defaults.ini").exists():
        return None
    port, provisioning = _port("grafana"), STATE / "grafana" / "provisioning"
    for kind, content in {
        "datasources": {"apiVersion": 1, "datasources": [
            {"name": "Prometheus", "uid": "prometheus", "type": "prometheus", "access": "proxy", "url": prometheus_url,
             "isDefault": True},
            {"name": "Outrider PostgreSQL", "uid": "outrider-postgres", "type": "grafana-postgresql-datasource",
             "url": f"127.0.0.1:{pg.port}", "user": "outrider",
             "jsonData": {"database": "outrider", "sslmode": "disable"}},
        ]},
        "dashboards": {"apiVersion": 1, "providers": [
            {"name": "outrider", "type": "file", "folder": "Outrider", "options": {"path": str(ROOT / "dashboards")}},
        ]},
    }.items():  # fmt: skip
        (provisioning / kind).mkdir(parents=True, exist_ok=True)
        (provisioning / kind / "outrider.yaml").write_text(json.dumps(content, indent=2))  # JSON is YAML
    env = {**os.environ, "GF_PATHS_PROVISIONING": str(provisioning), "GF_PATHS_DATA": str(STATE / "grafana" / "data"),
           "GF_PATHS_LOGS": str(STATE / "logs"), "GF_SERVER_HTTP_ADDR": "127.0.0.1", "GF_SERVER_HTTP_PORT": str(port),
           "GF_AUTH_ANONYMOUS_ENABLED": "true", "GF_AUTH_ANONYMOUS_ORG_ROLE": "Viewer"}  # fmt: skip
    proc = subprocess.Popen(
        [binary, "server", "--homepath", str(home)], env=env,
        stdout=(STATE / "logs" / "grafana.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    stack.services["grafana"] = {"pid": proc.pid, "port": port}
    stack.save()
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _answers(f"{url}/api/health"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise StackError(f"grafana did not start; see {STATE / 'logs' / 'grafana.log'}")
        time.sleep(0.5)
    return url


def _answers(url: str) -> bool:
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def down() -> None:
    """Stop what `up` started: services first (SIGTERM, they finish in-flight work), then Kafka, then PostgreSQL."""
    stack = Stack.load()
    # Without stack.json, a server may still be left by an `up` killed before it wrote it: their pid files say so.
    kafka = Kafka(STATE / "kafka", pid=stack.kafka_pid) if stack else Kafka(STATE / "kafka")
    kafka_left = stack is not None or (STATE / "kafka" / "pid").exists()
    postgres_left = (STATE / "postgres" / "data" / "postmaster.pid").exists()
    if stack is None and not kafka_left and not postgres_left:
        console.print("Nothing to stop.")
        return
    for name, info in (stack.services if stack else {}).items():
        stop_pid(info["pid"], marker=name.encode() if name in ("prometheus", "grafana") else b"outrider")
        console.print(f"stopped {name}")
    if kafka_left:
        kafka.stop()
        console.print("stopped kafka")
    if postgres_left:
        Postgres(STATE / "postgres").stop()
        console.print("stopped postgres")
    (STATE / "stack.json").unlink(missing_ok=True)
    ADMIN_TOKEN_FILE.unlink(missing_ok=True)
