"""The Helm chart: `helm lint --strict` and `helm template` for every CI values file, manifests valid against the
Kubernetes schemas (offline, kubernetes-validate), and the right security context and probes everywhere."""

import subprocess
import typing
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from outrider.devstack import ROOT
from outrider_analyzer.settings import AnalyzerSettings
from outrider_common.settings import KafkaSettings
from outrider_common.topics import LOGS_RAW

CHART = ROOT / "deploy" / "helm" / "outrider"
HELM = ROOT / ".cache" / "bin" / "helm"
VALUES = [None, *sorted((CHART / "ci").glob("*-values.yaml"))]
K8S = "1.30.0"


def helm(*args: str) -> str:
    assert HELM.exists(), "helm missing: scripts/bootstrap.sh builds it with go install"
    done = subprocess.run([str(HELM), *args], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def render(*args: str) -> list[dict]:
    """The manifests `helm template demo` renders with these arguments."""
    return [d for d in yaml.safe_load_all(helm("template", "demo", str(CHART), *args)) if d]


@pytest.mark.parametrize("values", VALUES, ids=lambda v: v.name if v else "defaults")
def test_chart_lints_renders_and_validates(values: Path | None) -> None:
    extra = ["-f", str(values)] if values else []
    bootstrap = (yaml.safe_load(values.read_text()) if values else {}).get("kafka", {}).get("bootstrapServers")
    helm("lint", "--strict", str(CHART), *extra)
    docs = [d for d in yaml.safe_load_all(helm("template", "demo", str(CHART), *extra)) if d]
    kinds = [d["kind"] for d in docs]
    assert kinds.count("Deployment") == 4
    for doc in docs:
        if doc["apiVersion"].startswith(("monitoring.coreos.com", "keda.sh")):
            continue  # CRDs of the Prometheus Operator and KEDA: not in the core schemas
        kubernetes_validate.validate(doc, K8S, strict=True)
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["securityContext"]["runAsNonRoot"] is True
        assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
        assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
        startup = container["startupProbe"]  # liveness waits while the pod waits for PostgreSQL and Kafka
        assert startup["httpGet"]["path"] == "/healthz"
        assert startup["periodSeconds"] * startup["failureThreshold"] >= 300
        assert {"name": "OUTRIDER_KAFKA_BOOTSTRAP_SERVERS", "value": bootstrap or "kafka:9092"} in container["env"]
        # The notifier's shutdown finishes the Slack post in hand: up to 3 x the 10 s Slack timeout after its consumer.
        grace = deployment["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30)
        assert grace >= (45 if deployment["metadata"]["name"].endswith("notifier") else 30)


def test_the_chart_ships_the_same_alert_rules_as_prometheus() -> None:
    assert (CHART / "files" / "outrider-rules.yaml").read_text() == (
        ROOT / "deploy" / "prometheus" / "outrider-rules.yaml"
    ).read_text()


def test_keda_scales_the_analyzer_on_the_lag_of_its_real_group_and_topic() -> None:
    docs = [
        d
        for d in yaml.safe_load_all(helm("template", "demo", str(CHART), "-f", str(CHART / "ci" / "keda-values.yaml")))
        if d
    ]
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    assert scaled["spec"]["scaleTargetRef"]["name"] == "demo-outrider-analyzer"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "kafka"
    (analyzer,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "demo-outrider-analyzer"]
    env = {e["name"]: e.get("value") for e in analyzer["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert trigger["metadata"]["consumerGroup"] == env["OUTRIDER_CONSUMER_GROUP"] == "acme.analyzer"  # the one it joins
    assert trigger["metadata"]["topic"] == f"acme.{LOGS_RAW.name}"  # with the chart's topicPrefix
    assert trigger["metadata"]["lagThreshold"] == "40"
    # KEDA owns the analyzer's HPA; ingest keeps its CPU one.
    assert [h["spec"]["scaleTargetRef"]["name"] for h in docs if h["kind"] == "HorizontalPodAutoscaler"] == [
        "demo-outrider-ingest"
    ]


def test_each_service_can_run_its_own_image() -> None:
    values = CHART / "ci" / "per-service-images-values.yaml"
    docs = [d for d in yaml.safe_load_all(helm("template", "demo", str(CHART), "-f", str(values))) if d]
    images = {
        d["metadata"]["name"].removeprefix("demo-outrider-"): d["spec"]["template"]["spec"]["containers"][0]["image"]
        for d in docs
        if d["kind"] in ("Deployment", "Job")
    }
    assert images == {
        "ingest": "registry.example.com/outrider/ingest:1.2.3",  # own repository, the shared tag
        "analyzer": "registry.example.com/outrider/analyzer:1.2.4",  # own repository and tag
        "tracker": "registry.example.com/outrider/outrider:1.2.3",  # the shared image
        "notifier": "registry.example.com/outrider/notifier:1.2.3",
        "migrations": "registry.example.com/outrider/outrider:1.2.3",  # every service's migrations: the whole image
    }


def test_tracker_and_notifier_share_one_overdue_grace_and_the_notifier_gets_the_engagement_page() -> None:
    url = "https://grafana.example/d/outrider-customer-logs/?var-engagement={engagement_id}"
    rendered = helm("template", "demo", str(CHART), "--set", "reminders.overdueGraceSeconds=7200",
                    "--set", f"reminders.engagementUrl={url}")  # fmt: skip
    env = {
        d["metadata"]["name"].removeprefix("demo-outrider-"): {
            e["name"]: e.get("value") for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        for d in yaml.safe_load_all(rendered)
        if d and d["kind"] == "Deployment"
    }
    assert env["tracker"]["OUTRIDER_OVERDUE_GRACE_S"] == env["notifier"]["OUTRIDER_OVERDUE_GRACE_S"] == "7200"
    assert env["notifier"]["OUTRIDER_ENGAGEMENT_URL"] == url
    assert "OUTRIDER_ENGAGEMENT_URL" not in env["tracker"]


def test_the_secret_exists_before_the_migration_job_reads_it() -> None:
    # Pre-install hooks run before ordinary resources exist, and pre-upgrade ones before they change: the Secret the
    # Job reads its DSN from must itself be an earlier hook (Helm runs hooks by ascending weight).
    docs = render()
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    (job,) = [d for d in docs if d["kind"] == "Job"]
    hook, weight = secret["metadata"]["annotations"], job["metadata"]["annotations"].get("helm.sh/hook-weight", "0")
    assert set(hook["helm.sh/hook"].split(",")) >= set(job["metadata"]["annotations"]["helm.sh/hook"].split(","))
    assert int(hook["helm.sh/hook-weight"]) < int(weight)
    assert hook["helm.sh/hook-delete-policy"] == "before-hook-creation"  # replaced on upgrade, kept for the services
    env = job["spec"]["template"]["spec"]["containers"][0]["env"]
    assert {"name": secret["metadata"]["name"], "key": "database-url"} in [
        e["valueFrom"]["secretKeyRef"] for e in env if "valueFrom" in e
    ]
    # With every secret external, the chart makes none.
    assert "Secret" not in [d["kind"] for d in render("-f", str(CHART / "ci" / "external-secrets-values.yaml"))]


def test_autoscaled_deployments_leave_their_replicas_to_the_autoscaler() -> None:
    def replicas(docs: list[dict]) -> dict[str, int | None]:
        return {
            d["metadata"]["name"].removeprefix("demo-outrider-"): d["spec"].get("replicas")
            for d in docs
            if d["kind"] == "Deployment"
        }

    assert replicas(render()) == {"ingest": 2, "analyzer": 2, "tracker": 2, "notifier": 1}
    # keda-values: KEDA scales the analyzer, the CPU HPA ingest; an upgrade must not reset what they scaled to.
    assert replicas(render("-f", str(CHART / "ci" / "keda-values.yaml"))) == {
        "ingest": None, "analyzer": None, "tracker": 2, "notifier": 1
    }  # fmt: skip
    assert replicas(render("--set", "keda.enabled=true")) == {
        "ingest": 2,
        "analyzer": None,
        "tracker": 2,
        "notifier": 1,
    }


def test_no_autoscaler_runs_more_analyzers_than_logs_raw_has_partitions() -> None:
    partitions = KafkaSettings.model_fields["topic_partitions"].default
    docs = render("--set", "autoscaling.enabled=true") + render("--set", "keda.enabled=true")
    most = [d["spec"]["maxReplicas"] for d in docs if d["kind"] == "HorizontalPodAutoscaler"]
    most += [d["spec"]["maxReplicaCount"] for d in docs if d["kind"] == "ScaledObject"]
    assert len(most) == 3
    assert max(most) <= partitions == 4


def test_monitoring_resources_carry_the_labels_prometheus_selects_them_by() -> None:
    docs = render("-f", str(CHART / "ci" / "monitoring-values.yaml"))
    monitoring = {d["kind"]: d["metadata"]["labels"] for d in docs if d["apiVersion"].startswith("monitoring.coreos")}
    assert set(monitoring) == {"ServiceMonitor", "PrometheusRule"}
    assert all(labels["release"] == "kps" and labels["app.kubernetes.io/part-of"] == "outrider"
               for labels in monitoring.values())  # fmt: skip
    plain = render("--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true")
    assert all("release" not in d["metadata"]["labels"] for d in plain)  # none by default


def test_no_pod_gets_a_kubernetes_api_token() -> None:
    # No service (nor the migrations) calls the Kubernetes API: a mounted token would only serve whoever breaks in.
    docs = render() + render("-f", str(CHART / "ci" / "network-policy-values.yaml"))
    pods = [d["spec"]["template"]["spec"] for d in docs if d["kind"] in ("Deployment", "Job")]
    assert len(pods) == 10
    assert all(pod["automountServiceAccountToken"] is False for pod in pods)


def test_network_policies_are_off_by_default() -> None:
    assert "NetworkPolicy" not in [d["kind"] for d in render()]


def test_network_policies_let_each_service_reach_only_what_it_uses() -> None:
    docs = render("-f", str(CHART / "ci" / "network-policy-values.yaml"))
    policies = {
        d["metadata"]["name"].removeprefix("demo-outrider-"): d["spec"] for d in docs if d["kind"] == "NetworkPolicy"
    }
    assert set(policies) == {"ingest", "analyzer", "tracker", "notifier"}
    deployments = {d["metadata"]["name"].removeprefix("demo-outrider-"): d for d in docs if d["kind"] == "Deployment"}

    def ports(rules: list[dict]) -> set[tuple[str, int]]:
        return {(p.get("protocol", "TCP"), p["port"]) for rule in rules for p in rule["ports"]}

    for name, spec in policies.items():
        pod = deployments[name]["spec"]["template"]
        assert spec["podSelector"]["matchLabels"].items() <= pod["metadata"]["labels"].items()  # selects its pods
        assert spec["policyTypes"] == ["Ingress", "Egress"]
        (container,) = pod["spec"]["containers"]
        assert ports(spec["ingress"]) == {("TCP", container["ports"][0]["containerPort"])}
        assert spec["ingress"][0]["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]
        dns = {("UDP", 53), ("TCP", 53)}
        assert ports(spec["egress"]) == dns | {("TCP", 9092), ("TCP", 5432), ("TCP", 4318)} | (
            {("TCP", 443)} if name == "notifier" else set()  # Slack
        )


def test_the_schema_refuses_a_network_policy_port_that_is_not_one() -> None:
    done = subprocess.run([str(HELM), "template", "demo", str(CHART), "--set", "networkPolicy.kafkaPort=0"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0
    assert "kafkaPort" in done.stderr


def deployment_env(docs: list[dict]) -> dict[str, dict[str, dict]]:
    """Each Deployment's container env entries by name, by service."""
    return {
        d["metadata"]["name"].removeprefix("demo-outrider-"): {
            e["name"]: e for e in d["spec"]["template"]["spec"]["containers"][0]["env"]
        }
        for d in docs
        if d["kind"] == "Deployment"
    }


def test_a_default_install_generates_the_admin_token_the_tracker_reads() -> None:
    # Without a token of the user's nobody could mint the first API token. (`helm template` has no cluster, so
    # `lookup` finds no earlier Secret and the token is generated; an upgrade reads the installed one back.)
    docs = render()
    (secret,) = [d for d in docs if d["kind"] == "Secret"]
    token = secret["stringData"]["admin-token"]
    assert len(token) >= 32
    assert token.isalnum()
    (again,) = [d for d in render() if d["kind"] == "Secret"]
    assert again["stringData"]["admin-token"] != token  # random: not one every install shares
    ref = deployment_env(docs)["tracker"]["OUTRIDER_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": secret["metadata"]["name"], "key": "admin-token"}
    # A token given is used as is; one from an existing Secret is read from there.
    (given,) = [d for d in render("--set", "auth.adminToken=otr_admin_given") if d["kind"] == "Secret"]
    assert given["stringData"]["admin-token"] == "otr_admin_given"
    external = render("--set", "auth.existingSecret=outrider-admin")
    (secret,) = [d for d in external if d["kind"] == "Secret"]
    assert "admin-token" not in secret["stringData"]
    ref = deployment_env(external)["tracker"]["OUTRIDER_ADMIN_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": "outrider-admin", "key": "admin-token"}


def test_consumer_groups_are_scoped_by_the_topic_prefix() -> None:
    # Two releases on one Kafka with different prefixes must not share (and split) a consumer group.
    env = deployment_env(render("--set", "topicPrefix=acme."))
    assert env["analyzer"]["OUTRIDER_CONSUMER_GROUP"]["value"] == "acme.analyzer"
    assert env["notifier"]["OUTRIDER_CONSUMER_GROUP"]["value"] == "acme.notifier"
    assert "OUTRIDER_CONSUMER_GROUP" not in env["ingest"]
    assert "OUTRIDER_CONSUMER_GROUP" not in env["tracker"]
    # Without a prefix, the groups the services join by default (and earlier releases of the chart used).
    env = deployment_env(render())
    assert env["analyzer"]["OUTRIDER_CONSUMER_GROUP"]["value"] == AnalyzerSettings().consumer_group == "analyzer"
    assert env["notifier"]["OUTRIDER_CONSUMER_GROUP"]["value"] == "notifier"


def test_any_setting_can_be_passed_to_a_service(tmp_path: Path) -> None:
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump({"services": {
            "notifier": {
                "env": [
                    {"name": "OUTRIDER_DEFAULT_CHANNEL", "value": "#rollouts"},
                    {"name": "OUTRIDER_QUIET_HOURS_UTC", "value": "[22, 7]"},
                    {"name": "OUTRIDER_SLACK_WEBHOOK_URL",
                     "valueFrom": {"secretKeyRef": {"name": "slack-webhook", "key": "url"}}},
                ],
                "extraEnvFrom": [{"configMapRef": {"name": "notifier-settings"}}],
            },
            "analyzer": {"env": [{"name": "OUTRIDER_LOG_LEVEL", "value": "DEBUG"}]},
        }})
    )  # fmt: skip
    helm("lint", "--strict", str(CHART), "-f", str(values))
    docs = render("-f", str(values))
    for doc in docs:
        if doc["kind"] == "Deployment":
            kubernetes_validate.validate(doc, K8S, strict=True)
    env = deployment_env(docs)
    assert env["notifier"]["OUTRIDER_DEFAULT_CHANNEL"]["value"] == "#rollouts"
    assert env["notifier"]["OUTRIDER_QUIET_HOURS_UTC"]["value"] == "[22, 7]"
    assert env["notifier"]["OUTRIDER_SLACK_WEBHOOK_URL"]["valueFrom"] == {
        "secretKeyRef": {"name": "slack-webhook", "key": "url"}
    }
    assert env["analyzer"]["OUTRIDER_LOG_LEVEL"]["value"] == "DEBUG"
    assert "OUTRIDER_LOG_LEVEL" not in env["tracker"]
    pods = {d["metadata"]["name"]: d["spec"]["template"]["spec"] for d in docs if d["kind"] == "Deployment"}
    assert pods["demo-outrider-notifier"]["containers"][0]["envFrom"] == [
        {"configMapRef": {"name": "notifier-settings"}}
    ]
    assert "envFrom" not in pods["demo-outrider-tracker"]["containers"][0]


def test_the_schema_refuses_a_service_key_the_chart_does_not_read() -> None:
    # A misspelt key (`extraEnv`, `replica`) would otherwise be ignored without a word.
    done = subprocess.run([str(HELM), "template", "demo", str(CHART), "--set", "services.notifier.extraEnv[0].name=X"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode != 0
    assert "extraEnv" in done.stderr


KAFKA_SASL_SSL = CHART / "ci" / "kafka-sasl-ssl-values.yaml"
SASL_ENV = {"OUTRIDER_KAFKA_SASL_MECHANISM", "OUTRIDER_KAFKA_SASL_USERNAME", "OUTRIDER_KAFKA_SASL_PASSWORD"}


def pod_specs(docs: list[dict]) -> dict[str, dict]:
    """Each Deployment's pod spec, by service."""
    return {
        d["metadata"]["name"].removeprefix("demo-outrider-"): d["spec"]["template"]["spec"]
        for d in docs
        if d["kind"] == "Deployment"
    }


def test_a_default_install_speaks_plaintext_to_kafka_and_makes_topics_as_the_services_would() -> None:
    docs = render("--set", "keda.enabled=true")
    env = deployment_env(docs)
    assert set(env) == {"ingest", "analyzer", "tracker", "notifier"}
    for service in env.values():
        assert service["OUTRIDER_KAFKA_SECURITY_PROTOCOL"]["value"] == "PLAINTEXT"
        assert not (SASL_ENV | {"OUTRIDER_KAFKA_SSL_CAFILE"}) & set(service)
        # The chart's defaults are the services' own: 4 partitions, one replica (a single broker).
        assert service["OUTRIDER_TOPIC_PARTITIONS"]["value"] == "4"
        assert service["OUTRIDER_TOPIC_REPLICATION_FACTOR"]["value"] == "1"
    assert KafkaSettings.model_fields["topic_partitions"].default == 4
    assert KafkaSettings.model_fields["topic_replication_factor"].default == 1
    assert all([v["name"] for v in pod["volumes"]] == ["tmp"] for pod in pod_specs(docs).values())
    assert "TriggerAuthentication" not in [d["kind"] for d in docs]
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    (trigger,) = scaled["spec"]["triggers"]
    assert "authenticationRef" not in trigger
    assert not {"sasl", "tls"} & set(trigger["metadata"])


def test_sasl_over_tls_reaches_every_service_and_keda_from_secrets() -> None:
    docs = render("-f", str(KAFKA_SASL_SSL))
    env, pods = deployment_env(docs), pod_specs(docs)
    assert set(env) == set(pods) == {"ingest", "analyzer", "tracker", "notifier"}
    for name, service in env.items():
        assert service["OUTRIDER_KAFKA_SECURITY_PROTOCOL"]["value"] == "SASL_SSL"
        assert service["OUTRIDER_KAFKA_SASL_MECHANISM"]["value"] == "SCRAM-SHA-512"
        for variable, key in (
            ("OUTRIDER_KAFKA_SASL_USERNAME", "username"),
            ("OUTRIDER_KAFKA_SASL_PASSWORD", "password"),
        ):
            assert service[variable] == {
                "name": variable,
                "valueFrom": {"secretKeyRef": {"name": "outrider-kafka", "key": key}},
            }  # never a value of its own
        assert service["OUTRIDER_TOPIC_REPLICATION_FACTOR"]["value"] == "3"
        # The CA file the services are told of is the Secret's ca.crt, mounted read-only in every pod.
        cafile = Path(service["OUTRIDER_KAFKA_SSL_CAFILE"]["value"])
        pod = pods[name]
        (volume,) = [v for v in pod["volumes"] if "secret" in v]
        assert volume["secret"]["secretName"] == "outrider-kafka-ca"
        (mount,) = [m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"]]
        assert mount["readOnly"] is True
        assert Path(mount["mountPath"]) / "ca.crt" == cafile
        assert {"key": "ca.crt", "path": "ca.crt"} in volume["secret"]["items"]
    # The migration Job only talks to PostgreSQL: no Kafka credentials for it.
    (job,) = [d for d in docs if d["kind"] == "Job"]
    job_env = {e["name"] for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert not SASL_ENV & job_env
    # KEDA reads the analyzer's lag with the same user and CA, from the same Secrets.
    (auth,) = [d for d in docs if d["kind"] == "TriggerAuthentication"]
    assert auth["apiVersion"] == "keda.sh/v1alpha1"
    assert sorted(auth["spec"]["secretTargetRef"], key=lambda r: r["parameter"]) == [
        {"parameter": "ca", "name": "outrider-kafka-ca", "key": "ca.crt"},
        {"parameter": "password", "name": "outrider-kafka", "key": "password"},
        {"parameter": "username", "name": "outrider-kafka", "key": "username"},
    ]
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
    assert trigger["metadata"]["bootstrapServers"] == "kafka.example.com:9096"
    assert trigger["metadata"]["sasl"] == "scram_sha512"  # KEDA's name of SCRAM-SHA-512
    assert trigger["metadata"]["tls"] == "enable"


@pytest.mark.parametrize(
    ("protocol", "mechanism", "sasl", "tls"),
    [
        ("SASL_PLAINTEXT", "PLAIN", "plaintext", None),
        ("SASL_SSL", "SCRAM-SHA-256", "scram_sha256", "enable"),
        ("SSL", "PLAIN", None, "enable"),
    ],
)
def test_keda_speaks_the_protocol_the_services_do(
    protocol: str, mechanism: str, sasl: str | None, tls: str | None
) -> None:
    args = ["--set", "keda.enabled=true", "--set", f"kafka.securityProtocol={protocol}"]
    args += ["--set", f"kafka.sasl.mechanism={mechanism}"]
    if sasl:
        args += ["--set", "kafka.sasl.existingSecret=outrider-kafka"]
    docs = render(*args)
    (scaled,) = [d for d in docs if d["kind"] == "ScaledObject"]
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["metadata"].get("sasl") == sasl
    assert trigger["metadata"].get("tls") == tls
    auths = [d for d in docs if d["kind"] == "TriggerAuthentication"]
    if sasl:
        (auth,) = auths
        assert trigger["authenticationRef"] == {"name": auth["metadata"]["name"]}
        assert {r["parameter"] for r in auth["spec"]["secretTargetRef"]} == {"username", "password"}
    else:  # TLS with the system's CAs: nothing to authenticate with
        assert auths == []
        assert "authenticationRef" not in trigger
    for service in deployment_env(docs).values():
        assert service["OUTRIDER_KAFKA_SECURITY_PROTOCOL"]["value"] == protocol
        assert "OUTRIDER_KAFKA_SSL_CAFILE" not in service  # no caSecret: the system's CAs
        assert ("OUTRIDER_KAFKA_SASL_PASSWORD" in service) == bool(sasl)


def test_the_schema_knows_the_protocols_and_mechanisms_the_services_do() -> None:
    schema = yaml.safe_load((CHART / "values.schema.json").read_text())["properties"]["kafka"]["properties"]
    fields = KafkaSettings.model_fields
    assert schema["securityProtocol"]["enum"] == list(typing.get_args(fields["kafka_security_protocol"].annotation))
    assert schema["sasl"]["properties"]["mechanism"]["enum"] == list(
        typing.get_args(fields["kafka_sasl_mechanism"].annotation)
    )


def refused(*args: str) -> str:
    """helm template's error for values the schema refuses."""
    done = subprocess.run(
        [str(HELM), "template", "demo", str(CHART), *args], capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0, done.stdout
    return done.stderr


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
def test_the_schema_refuses_sasl_without_a_secret(protocol: str) -> None:
    assert "existingSecret" in refused("--set", f"kafka.securityProtocol={protocol}")


def test_the_schema_refuses_kafka_settings_that_would_be_ignored_or_unknown() -> None:
    # Credentials or a CA with a protocol that does not use them: the cluster would be spoken to in the clear.
    assert "existingSecret" in refused("--set", "kafka.sasl.existingSecret=outrider-kafka")
    assert "caSecret" in refused("--set", "kafka.tls.caSecret=outrider-kafka-ca", "--set",
                                 "kafka.securityProtocol=SASL_PLAINTEXT", "--set",
                                 "kafka.sasl.existingSecret=outrider-kafka")  # fmt: skip
    assert "securityProtocol" in refused("--set", "kafka.securityProtocol=TLS")
    assert "mechanism" in refused("--set", "kafka.sasl.mechanism=GSSAPI")
    assert "topicReplicationFactor" in refused("--set", "kafka.topicReplicationFactor=0")
    assert "topicPartitions" in refused("--set", "kafka.topicPartitions=0")
    assert "username" in refused("--set", "kafka.sasl.username=alice")  # never plaintext in values
