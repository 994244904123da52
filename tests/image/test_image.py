"""The suite's image (`make image`, deploy/image/Containerfile) runs the suite as the Kubernetes manifests do.

Every service of the table and the gateway start from the image, one podman container each (host network,
the image's non-root user, read-only root filesystem, no capabilities), with the settings and tokens the dev
stack gives them; OpenBao and the provider simulator run on the host. Each service answers SERVING over gRPC
health and one chat goes through Envoy in the gateway container, the router's container, to the simulator.
`make test-image` builds the image and runs this; skipped only where podman is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmagg.suite import SERVICES
from llmagg_devstack import IMAGE_DESCRIPTOR, PodmanLauncher, Ports, Stack, grpc_serving, write_config

from ..helpers import (
    AGENT_TEST_ENV,
    ROUTER_TEST_ENV,
    arrivals,
    create_client_key,
    post_raw,
    routing_config,
    scenario,
)

pytestmark = pytest.mark.image

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"


def _manifests_generator():
    spec = importlib.util.spec_from_file_location("k8s_generate", K8S / "generate.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


generate = _manifests_generator()
IMAGE = f"{generate.IMAGE}:{generate.VERSION}"  # what the manifests run


@pytest.fixture(scope="module")
def image() -> str:
    if shutil.which("podman") is None:
        pytest.skip(
            "podman is not installed: `make test-image` installs it (deploy/image/podman-setup.sh) and builds the image"
        )
    if subprocess.run(["podman", "image", "exists", IMAGE], check=False).returncode != 0:
        pytest.fail(f"the image {IMAGE} is not built: run `make image` (or `make test-image`)")
    return IMAGE


@pytest.fixture(scope="module")
def launcher(image, tmp_path_factory) -> Iterator[PodmanLauncher]:
    launcher = PodmanLauncher(image, [tmp_path_factory.mktemp("image-stack")])
    try:
        yield launcher
    finally:
        launcher.remove()


@pytest.fixture(scope="module")
def image_stack(launcher, simulator) -> Iterator[Stack]:
    """The stack with an OpenBao of its own, its data (the token files credentials reads) in the run directory,
    which the containers see."""
    run_dir = launcher.mounts[0]
    config = write_config(run_dir / "config.yaml", routing_config(simulator))
    stack = Stack(run_dir, Ports.free(), launcher=launcher, gateway_descriptor=IMAGE_DESCRIPTOR)
    with stack.running({**ROUTER_TEST_ENV, **AGENT_TEST_ENV, "LLMAGG_CONFIG": str(config)}) as running:
        yield running


def inspect(container: str) -> dict:
    found = subprocess.run(["podman", "inspect", container], capture_output=True, text=True, check=True)
    return json.loads(found.stdout)[0]


def manifest_command(deployment: dict) -> list[str]:
    return deployment["spec"]["template"]["spec"]["containers"][0]["command"]


def gateway_deployment() -> dict:
    return next(o for o in generate.gateway_objects(SERVICES) if o["kind"] == "Deployment")


def test_the_image_path_and_user_are_the_manifests(image):
    assert IMAGE_DESCRIPTOR == generate.GATEWAY_DESCRIPTOR
    config = inspect(image)["Config"]
    assert config["User"] == f"{generate.POD_SECURITY['runAsUser']}:{generate.POD_SECURITY['runAsGroup']}"


def test_the_image_holds_no_compiler_pip_or_build_leftovers(image):
    probe = (
        "for p in gcc cc c++ make; do command -v $p; done; ls -d /opt/build /wheels /src /root/.cache 2>/dev/null;"
        " python -c 'import pip' 2>/dev/null && echo pip; true"
    )
    found = subprocess.run(
        ["podman", "run", "--rm", "--pull=never", image, "sh", "-c", probe], capture_output=True, text=True
    )
    assert (found.returncode, found.stdout) == (0, "")


def test_every_service_of_the_table_serves_from_its_own_container(image_stack, launcher):
    for service in SERVICES:
        container = inspect(launcher.containers[service.name])
        assert (container["ImageName"], container["State"]["Running"]) == (f"localhost/{IMAGE}", True)
        assert container["Config"]["Cmd"] == manifest_command(generate.deployment(service))
        assert grpc_serving(image_stack.address(service.name)), service.name


def test_a_chat_goes_through_the_gateway_container_to_the_simulator(image_stack, launcher, simulator):
    gateway = inspect(launcher.containers["gateway"])
    assert (gateway["ImageName"], gateway["State"]["Running"]) == (f"localhost/{IMAGE}", True)
    assert gateway["Config"]["Cmd"][:1] == manifest_command(gateway_deployment())[:1]
    providers = scenario(simulator, "chat-model")
    key = create_client_key(image_stack, "image test")
    body = {"model": "chat-model", "messages": [{"role": "user", "content": "echo: from the image"}]}
    status, _, answer = post_raw(
        f"{image_stack.base_url}/chat/completions", json.dumps(body).encode(), {"Authorization": f"Bearer {key}"}
    )
    assert status == 200, answer
    assert answer["choices"][0]["message"]["content"] == "from the image"
    assert answer["provider"] == "sim-fast"
    assert arrivals(simulator, providers) == ["sim-fast"]
