"""deploy/ validated offline: no container engine or cluster runs here."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml

from render_common import streams
from render_common.config import ROOT

DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
K8S_VERSION = "1.30.0"
CRD_KINDS = {"ScaledObject", "TriggerAuthentication", "Kustomization"}


def manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        documents.extend(d for d in yaml.safe_load_all(path.read_text()) if d)
    return documents


def by_kind(kind: str) -> list[dict[str, Any]]:
    return [d for d in manifests() if d["kind"] == kind]


@pytest.mark.parametrize(
    "doc",
    [d for d in manifests() if d["kind"] not in CRD_KINDS],
    ids=lambda d: f"{d['kind']}/{d['metadata']['name']}",
)
def test_manifest_validates_against_kubernetes_schema(doc: dict[str, Any]) -> None:
    kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_kustomization_lists_every_manifest() -> None:
    listed = set(yaml.safe_load((K8S / "kustomization.yaml").read_text())["resources"])
    assert listed == {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}


def test_deployments_probe_grpc_and_run_as_non_root() -> None:
    ports = {"render-api": 50051, "progress": 50052, "render-worker": 50053, "edge": "http"}
    deployments = {d["metadata"]["name"]: d for d in by_kind("Deployment")}
    assert set(deployments) == set(ports)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        probe = "httpGet" if name == "edge" else "grpc"
        assert container["readinessProbe"][probe]["port"] == ports[name]
        assert container["livenessProbe"][probe]["port"] == ports[name]
        assert (
            container["resources"]["requests"]["memory"]
            and container["resources"]["limits"]["memory"]
        )
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["allowPrivilegeEscalation"] is False
    worker = deployments["render-worker"]["spec"]["template"]["spec"]
    assert any(
        v.get("emptyDir", {}).get("medium") == "Memory" for v in worker["volumes"]
    )  # /dev/shm
    assert worker["terminationGracePeriodSeconds"] > 90  # longer than SHUTDOWN_GRACE_SECONDS
    assert worker["containers"][0]["resources"]["requests"]["memory"] == "1536Mi"


def test_services_and_budgets_select_existing_pods() -> None:
    labels = [d["spec"]["template"]["metadata"]["labels"] for d in by_kind("Deployment")]

    def selects(selector: dict[str, str]) -> bool:
        return any(all(pod.get(k) == v for k, v in selector.items()) for pod in labels)

    for service in by_kind("Service"):
        assert selects(service["spec"]["selector"]), service["metadata"]["name"]
    budgets = by_kind("PodDisruptionBudget")
    assert len(budgets) == 4
    for budget in budgets:
        assert selects(budget["spec"]["selector"]["matchLabels"]), budget["metadata"]["name"]


def test_keda_scales_workers_on_stream_lag() -> None:
    (scaled,) = by_kind("ScaledObject")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "render-worker"
    (trigger,) = scaled["spec"]["triggers"]
    assert trigger["type"] == "redis-streams"
    assert trigger["metadata"]["stream"] == streams.SSR_JOBS_STREAM
    assert trigger["metadata"]["consumerGroup"] == streams.SSR_JOBS_GROUP
    assert int(trigger["metadata"]["lagCount"]) >= 1
    (auth,) = by_kind("TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    secret_keys = {k for s in by_kind("Secret") for k in s["stringData"]}
    assert {r["key"] for r in auth["spec"]["secretTargetRef"]} <= secret_keys


def test_compose_file_is_consistent() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    services = compose["services"]
    assert {
        "postgres",
        "redis",
        "render-api",
        "progress",
        "edge",
        "worker",
        "otel-collector",
        "jaeger",
    } <= set(services)
    one_shot = {"migrate"}
    for name, service in services.items():
        assert "healthcheck" in service or name in one_shot, name
        for dependency in service.get("depends_on", {}):
            assert dependency in services, (name, dependency)
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            assert source.startswith(".") or source in compose["volumes"], (name, volume)
        build = service.get("build")
        if build:
            assert (DEPLOY / build["context"] / build["dockerfile"]).resolve().exists()
    assert services["worker"]["shm_size"] == "1gb"
    edge = services["edge"]["environment"]
    assert edge["RENDER_API_ADDR"] == "render-api:50051"
    assert edge["PROGRESS_ADDR"] == "progress:50052"
    # Migrations run once, as their own step, before any service starts.
    assert services["migrate"]["command"] == ["python", "-m", "render_common.db", "migrate"]
    for name in ("render-api", "progress", "worker"):
        dependency = services[name]["depends_on"]["migrate"]
        assert dependency == {"condition": "service_completed_successfully"}, name


def test_migrations_run_as_a_job_and_deployments_wait_for_the_schema() -> None:
    (job,) = by_kind("Job")
    (container,) = job["spec"]["template"]["spec"]["containers"]
    assert container["command"] == ["python", "-m", "render_common.db", "migrate"]
    for deployment in by_kind("Deployment"):
        if deployment["metadata"]["name"] not in {"render-api", "progress", "render-worker"}:
            continue  # the edge uses no database
        pod = deployment["spec"]["template"]["spec"]
        waits = [c for c in pod.get("initContainers", []) if c["name"] == "wait-for-schema"]
        assert len(waits) == 1, deployment["metadata"]["name"]
        assert "render_common.db check" in " ".join(waits[0]["command"])
        assert "migrate" not in " ".join(waits[0]["command"])


def test_dockerfiles_run_as_non_root_and_bring_chromium() -> None:
    for name in ("python.Dockerfile", "worker.Dockerfile"):
        text = (DEPLOY / "images" / name).read_text()
        assert "\nUSER 10001" in text and "requirements.lock" in text
    worker = (DEPLOY / "images" / "worker.Dockerfile").read_text()
    assert "chromium-headless-shell" in worker and "npm ci" in worker and "node:20" in worker
