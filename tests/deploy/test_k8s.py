"""The manifests of k8s/ as each overlay renders them (render.py: the subset of kustomize they
use): valid objects by the Kubernetes API's own schemas, strictly (an unknown or misspelt field
fails), and in agreement with the service they run: its probes, port, drain, settings, the files
it writes, the metric it exports and the flags the deploy guide changes."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from datadog.dogstatsd.base import DD_ENV_TAGS_MAPPING
from pydantic import AliasChoices

from voice_agent.errors import ConfigError
from voice_agent.flags import FlagsPatch
from voice_agent.server.access import OPEN_PATHS, loopback, parse_keys
from voice_agent.server.drain import CLOSE_WAIT_S
from voice_agent.server.health import health_router
from voice_agent.settings import Settings, load_settings
from voice_agent.telemetry.metrics import PrometheusMetrics

from .dockerfile import ROOT, stages
from .render import Obj, RenderError, load_objects, merge, render

KUBERNETES_VERSION = "1.30"
K8S = ROOT / "k8s"
OVERLAYS = sorted(p.name for p in (K8S / "overlays").iterdir() if p.is_dir())
IMAGE = stages((ROOT / "Dockerfile").read_text())[1][-1]
SECRET_EXAMPLE = K8S / "base" / "secret.example.yaml"
ACTIVE_CALLS = "voice_active_calls"
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)

# Resident memory of one process in MiB, measured on 2026-12-06 (docs/deploy.md, "Resources"):
# the service with the encoder, plus the bundled model's own process for the local backend.
MEASURED_MIB = {"local": 857 + 227, "openai": 859}
WORKERS_PARENT_MIB = 53 + 13  # `serve --workers`: the parent and multiprocessing's tracker

# Variables the pod sets that are not the service's settings, and who reads them.
NOT_SETTINGS = {
    "HOME": "the libraries' files under ~ (ONNX Runtime writes to ~/.cache)",
    "XDG_CACHE_HOME": "the libraries' caches",
    **{name: "the datadog library: metric tags, origin detection" for name in DD_ENV_TAGS_MAPPING},
}


def setting_names() -> set[str]:
    names: set[str] = set()
    for field in Settings.model_fields.values():
        alias = field.validation_alias
        assert isinstance(alias, AliasChoices), field
        names.update(str(choice) for choice in alias.choices)
    return names


SETTINGS = setting_names()


@pytest.fixture(scope="module", params=OVERLAYS)
def objects(request: pytest.FixtureRequest) -> list[Obj]:
    return render(K8S / "overlays" / request.param)


def one(objects: list[Obj], kind: str, name: str = "voice-agent") -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind}/{name}"
    return found[0]


def pod(objects: list[Obj]) -> dict[str, Any]:
    spec: dict[str, Any] = one(objects, "Deployment")["spec"]["template"]
    return spec


def container(objects: list[Obj]) -> dict[str, Any]:
    return next(c for c in pod(objects)["spec"]["containers"] if c["name"] == "voice-agent")


def environment(objects: list[Obj]) -> dict[str, Any]:
    """The container's variables as the kubelet gives them: the image's ENV, then `envFrom`,
    then `env` (a `valueFrom` kept as the reference it is)."""
    env: dict[str, Any] = IMAGE.env()
    c = container(objects)
    for source in c.get("envFrom", []):
        env.update(one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in c.get("env", []):
        env[entry["name"]] = entry.get("value", entry.get("valueFrom"))
    return env


def settings_of(objects: list[Obj]) -> Settings:
    """The settings the service would read in the pod (values kept in Secrets left out)."""
    env = environment(objects)
    return load_settings(**{k: v for k, v in env.items() if k in SETTINGS and isinstance(v, str)})


def port_number(objects: list[Obj], port: int | str) -> int:
    ports = {p["name"]: p["containerPort"] for p in container(objects)["ports"]}
    return ports[port] if isinstance(port, str) else port


def mib(quantity: str) -> float:
    """A memory quantity in MiB (the binary suffixes the manifests use)."""
    found = re.fullmatch(r"(\d+(?:\.\d+)?)(Ki|Mi|Gi)?", quantity)
    assert found, f"not a quantity this test reads: {quantity}"
    number, unit = found.groups()
    return float(number) * {"Ki": 1 / 1024, "Mi": 1, "Gi": 1024, None: 1 / 2**20}[unit]


def exported_metric(name: str) -> bool:
    """Whether GET /metrics serves this family (the route renders PrometheusMetrics)."""
    text = PrometheusMetrics().render().decode()
    return name in re.findall(r"^# TYPE (\S+) ", text, re.MULTILINE)


def workloads(objects: list[Obj]) -> list[Obj]:
    return [o for o in objects if o["kind"] in ("Deployment", "StatefulSet")]


def test_every_rendered_object_is_valid_by_the_kubernetes_schemas_strictly(
    objects: list[Obj],
) -> None:
    for obj in objects:
        kubernetes_validate.validate(obj, KUBERNETES_VERSION, strict=True)


def test_probes_ask_health_and_ready_on_the_port_the_service_listens_on(
    objects: list[Obj],
) -> None:
    c, settings = container(objects), settings_of(objects)
    assert [p["containerPort"] for p in c["ports"]] == [settings.port]
    probes = {"startupProbe": "/health", "livenessProbe": "/health", "readinessProbe": "/ready"}
    routes = {getattr(route, "path", None) for route in health_router().routes}
    for probe, path in probes.items():
        assert c[probe]["httpGet"]["path"] == path
        assert port_number(objects, c[probe]["httpGet"]["port"]) == settings.port
        assert path in routes and path in OPEN_PATHS  # served, and without a key


def test_startup_probe_waits_as_long_as_the_service_waits_for_its_model(
    objects: list[Obj],
) -> None:
    startup, settings = container(objects)["startupProbe"], settings_of(objects)
    window = startup["periodSeconds"] * startup["failureThreshold"]
    assert window > settings.llm_start_timeout_s


def test_grace_period_outlasts_the_prestop_sleep_the_drain_and_the_goodbyes(
    objects: list[Obj],
) -> None:
    command = container(objects)["lifecycle"]["preStop"]["exec"]["command"]
    assert command[0] == "sleep"
    grace = pod(objects)["spec"]["terminationGracePeriodSeconds"]
    assert grace > float(command[1]) + settings_of(objects).drain_timeout_s + CLOSE_WAIT_S


def test_every_variable_the_pod_sets_is_a_setting_or_read_by_a_library(
    objects: list[Obj],
) -> None:
    c = container(objects)
    names = {e["name"] for e in c["env"]}
    for source in c["envFrom"]:
        names |= set(one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    unknown = sorted(names - SETTINGS - set(NOT_SETTINGS))
    assert not unknown, f"not settings of voice_agent/settings.py: {unknown}"


def test_every_setting_value_is_one_the_service_accepts(objects: list[Obj]) -> None:
    settings_of(objects)  # raises ConfigError naming the variable otherwise


def test_variable_references_name_variables_defined_before_them(objects: list[Obj]) -> None:
    c = container(objects)
    defined: set[str] = set()
    for source in c["envFrom"]:
        defined |= set(one(objects, "ConfigMap", source["configMapRef"]["name"])["data"])
    for entry in c["env"]:
        for name in re.findall(r"\$\((\w+)\)", entry.get("value", "")):
            assert name in defined, f"{entry['name']} uses $({name}) before it is set"
        defined.add(entry["name"])


def test_datadog_tags_read_labels_the_pod_has(objects: list[Obj]) -> None:
    labels = pod(objects)["metadata"]["labels"]
    for entry in container(objects)["env"]:
        path = entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath", "")
        label = re.fullmatch(r"metadata\.labels\['([^']+)'\]", path)
        if label:
            assert label.group(1) in labels, f"{entry['name']} reads a label the pod lacks"


def test_every_pod_runs_as_non_root_on_a_read_only_root_filesystem(objects: list[Obj]) -> None:
    for workload in workloads(objects):
        spec = workload["spec"]["template"]["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] != 0
        assert spec["automountServiceAccountToken"] is False
        for c in spec["containers"]:
            assert c["securityContext"]["readOnlyRootFilesystem"] is True
            assert c["securityContext"]["allowPrivilegeEscalation"] is False
            assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]


def test_every_path_the_service_writes_is_on_a_writable_volume(objects: list[Obj]) -> None:
    # Found by running `voice-agent serve` with an empty HOME and TMPDIR (docs/deploy.md): the
    # settings' files, ONNX Runtime under ~/.cache, torch and others under the temp folder,
    # the metrics of `serve --workers` in a folder of the temp folder unless one is given.
    env, settings = environment(objects), settings_of(objects)
    workdir = Path(IMAGE.all("WORKDIR")[-1])
    home = Path(env["HOME"])
    written = {
        "VOICE_AGENT_AUDIT_LOG": settings.audit_log,
        "VOICE_AGENT_TELEMETRY_FILE": settings.telemetry_file,
        "VOICE_AGENT_CLOUDWATCH_EMF": settings.cloudwatch_emf not in ("", "stdout")
        and Path(settings.cloudwatch_emf),
        "HOME": home / ".cache",
        "XDG_CACHE_HOME": Path(env.get("XDG_CACHE_HOME") or home / ".cache"),
        "TMPDIR": Path(env.get("TMPDIR", "/tmp")),
        "PROMETHEUS_MULTIPROC_DIR": Path(
            settings.prometheus_multiproc_dir or env.get("TMPDIR", "/tmp")
        ),
    }
    c, volumes = container(objects), {v["name"]: v for v in pod(objects)["spec"]["volumes"]}
    writable = [
        Path(m["mountPath"])
        for m in c["volumeMounts"]
        if not m.get("readOnly")
        and ({"emptyDir", "persistentVolumeClaim"} & set(volumes[m["name"]]))
    ]
    for name, path in written.items():
        if path:
            where = workdir / path  # a relative path is taken from the working directory
            assert any(where.is_relative_to(m) for m in writable), f"{name}: {where} read-only"
    # The encoder's export is written only when missing: the image made it at build.
    exported = Path(settings.encoder_cache_dir)
    assert str(exported) == IMAGE.env()["VOICE_AGENT_ENCODER_CACHE_DIR"] or any(
        exported.is_relative_to(m) for m in writable
    )


def test_service_sends_calls_to_the_port_the_service_listens_on(objects: list[Obj]) -> None:
    service, labels = one(objects, "Service"), pod(objects)["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= labels.items()
    for port in service["spec"]["ports"]:
        assert port_number(objects, port["targetPort"]) == settings_of(objects).port


def test_autoscaler_scales_the_deployment_on_cpu_and_the_calls_the_service_reports(
    objects: list[Obj],
) -> None:
    hpa, deployment = one(objects, "HorizontalPodAutoscaler"), one(objects, "Deployment")
    target = hpa["spec"]["scaleTargetRef"]
    assert (target["kind"], target["name"]) == ("Deployment", deployment["metadata"]["name"])
    metrics = hpa["spec"]["metrics"]
    assert {"type": "Resource", "name": "cpu"} in [
        {"type": m["type"], "name": m["resource"]["name"]} for m in metrics if "resource" in m
    ]
    pods = [m["pods"]["metric"]["name"] for m in metrics if m["type"] == "Pods"]
    assert pods == [ACTIVE_CALLS]
    assert exported_metric(ACTIVE_CALLS), (
        f"the HPA scales on {ACTIVE_CALLS}, which voice_agent/telemetry/metrics.py does not "
        "export (yet): /metrics must carry the gauge of calls open on the pod"
    )
    # The autoscaler owns the count; a count in the Deployment would reset it on each apply.
    assert "replicas" not in deployment["spec"]
    assert hpa["spec"]["minReplicas"] >= 2  # a drain never leaves the Service without a pod


def test_disruption_budget_covers_exactly_the_deployments_pods(objects: list[Obj]) -> None:
    pdb, deployment = one(objects, "PodDisruptionBudget"), one(objects, "Deployment")
    selector = pdb["spec"]["selector"]["matchLabels"]
    assert selector == deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= pod(objects)["metadata"]["labels"].items()
    assert (
        pdb["spec"]["maxUnavailable"]
        < one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"]
    )


def test_pods_that_share_flags_and_cache_are_given_redis(objects: list[Obj]) -> None:
    env = environment(objects)
    several = one(objects, "HorizontalPodAutoscaler")["spec"]["minReplicas"] > 1
    if several or int(env.get("VOICE_AGENT_WORKERS", "1")) > 1:
        assert env.get("VOICE_AGENT_REDIS_URL"), "a canary PATCH would reach one process only"
    url = env.get("VOICE_AGENT_REDIS_URL")
    if isinstance(url, str):  # an in-cluster Redis: its Service and NetworkPolicy agree
        found = re.fullmatch(r"redis://([\w-]+):(\d+)/\d+", url)
        assert found, f"VOICE_AGENT_REDIS_URL={url}: not an in-cluster Redis this test reads"
        host, port = found.groups()
        service = one(objects, "Service", host)
        assert int(port) in [p["port"] for p in service["spec"]["ports"]]
        policy = one(objects, "NetworkPolicy", host)
        admitted = policy["spec"]["ingress"][0]["from"][0]["podSelector"]["matchLabels"]
        assert admitted.items() <= pod(objects)["metadata"]["labels"].items()
        assert int(port) in [p["port"] for p in policy["spec"]["ingress"][0]["ports"]]


def test_api_keys_come_from_the_secret_and_are_required_to_listen_beyond_loopback(
    objects: list[Obj],
) -> None:
    assert not loopback(settings_of(objects).host)  # reachable by the Service at all
    secret = load_objects(SECRET_EXAMPLE)[0]
    refs = {
        e["name"]: e["valueFrom"]["secretKeyRef"]
        for e in container(objects)["env"]
        if "secretKeyRef" in e.get("valueFrom", {})
    }
    for name in ("VOICE_AGENT_API_KEYS", "VOICE_AGENT_ADMIN_KEYS"):
        assert name in refs and not refs[name].get("optional")
    for ref in refs.values():
        assert ref["name"] == secret["metadata"]["name"] and ref["key"] in secret["stringData"]


def test_metrics_are_scraped_without_a_key_on_the_service_port(objects: list[Obj]) -> None:
    settings, annotations = settings_of(objects), pod(objects)["metadata"]["annotations"]
    assert settings.metrics_open  # the scrapers have no key
    assert annotations["prometheus.io/path"] == "/metrics"
    assert int(annotations["prometheus.io/port"]) == settings.port


def test_datadog_annotations_are_json_for_the_container_scraping_the_service(
    objects: list[Obj],
) -> None:
    annotations, settings = pod(objects)["metadata"]["annotations"], settings_of(objects)
    names = {c["name"] for c in pod(objects)["spec"]["containers"]}
    datadog = {k: v for k, v in annotations.items() if k.startswith("ad.datadoghq.com/")}
    assert datadog
    for key, value in datadog.items():
        assert key.split("/")[1].split(".")[0] in names
        json.loads(value)
    check = json.loads(datadog["ad.datadoghq.com/voice-agent.checks"])
    for instance in check["openmetrics"]["instances"]:
        assert instance["openmetrics_endpoint"] == f"http://%%host%%:{settings.port}/metrics"
        for metric in instance["metrics"]:
            assert exported_metric(metric), f"{metric} is not on /metrics"


def test_image_and_version_labels_are_the_projects_version(objects: list[Obj]) -> None:
    assert VERSION
    assert container(objects)["image"].endswith(f":{VERSION.group(1)}")
    labels = pod(objects)["metadata"]["labels"]
    assert labels["tags.datadoghq.com/version"] == VERSION.group(1)


def test_memory_covers_the_measured_processes_of_the_pod(objects: list[Obj]) -> None:
    env, resources = environment(objects), container(objects)["resources"]
    settings = settings_of(objects)
    workers = int(env.get("VOICE_AGENT_WORKERS", "1"))
    needed = workers * MEASURED_MIB[settings.llm_backend.value]
    needed += WORKERS_PARENT_MIB if workers > 1 else 0
    assert mib(resources["requests"]["memory"]) >= needed
    assert mib(resources["limits"]["memory"]) > mib(resources["requests"]["memory"])


def test_adapter_rule_serves_the_metric_the_autoscaler_reads() -> None:
    values = yaml.safe_load((K8S / "prometheus-adapter" / "values.yaml").read_text())
    rules = values["rules"]["custom"]
    assert [r["name"]["as"] for r in rules] == [ACTIVE_CALLS]
    assert rules[0]["seriesQuery"].startswith(ACTIVE_CALLS + "{")
    overrides = rules[0]["resources"]["overrides"]
    assert overrides["pod"] == {"resource": "pod"}  # a per-pod metric, as `type: Pods` wants


def test_secret_example_is_never_applied_and_its_placeholders_stop_start_up() -> None:
    secret = load_objects(SECRET_EXAMPLE)[0]
    kubernetes_validate.validate(secret, KUBERNETES_VERSION, strict=True)
    for kustomization in K8S.rglob("kustomization.yaml"):
        resources = yaml.safe_load(kustomization.read_text()).get("resources", [])
        assert not [r for r in resources if r.endswith(SECRET_EXAMPLE.name)], kustomization
    assert set(secret["stringData"]) <= SETTINGS
    for name in ("VOICE_AGENT_API_KEYS", "VOICE_AGENT_ADMIN_KEYS"):
        with pytest.raises(ConfigError):
            parse_keys(secret["stringData"][name], name, admin=False)


def test_deploy_guide_names_real_files_and_sends_flag_changes_the_service_accepts() -> None:
    guide = (ROOT / "docs" / "deploy.md").read_text()
    for path in set(re.findall(r"\bk8s/[\w./-]*\w", guide)):
        assert (ROOT / path).exists(), f"docs/deploy.md names {path}"
    commands = guide.replace("\\\n", " ").splitlines()  # continuation lines joined
    bodies = [re.findall(r"-d '([^']*)'", c) for c in commands if "-X PATCH" in c]
    assert len(bodies) >= 5 and all(len(b) == 1 for b in bodies), bodies
    for (body,) in bodies:
        FlagsPatch.model_validate_json(body)


def test_renderer_merges_named_lists_item_by_item_and_replaces_the_others() -> None:
    base = {
        "containers": [{"name": "a", "env": [{"name": "X", "value": "1"}], "args": ["p", "q"]}],
        "keep": 1,
        "drop": 2,
    }
    patch = {
        "containers": [{"name": "a", "env": [{"name": "Y", "value": "2"}], "args": ["r"]}],
        "drop": None,
    }
    assert merge(base, patch) == {
        "containers": [
            {
                "name": "a",
                "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                "args": ["r"],
            }
        ],
        "keep": 1,
    }


def test_renderer_refuses_kustomize_features_it_does_not_render(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources: []\nconfigMapGenerator:\n  - name: x\n    literals: [A=1]\n"
    )
    with pytest.raises(RenderError, match="configMapGenerator"):
        render(tmp_path)
