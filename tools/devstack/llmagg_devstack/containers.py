"""Run the stack's services and Envoy from the suite's image (deploy/image/Containerfile), one podman
container each, instead of from the venv: `Stack(..., launcher=PodmanLauncher(image, [run_dir]))`.

Each container shares the host's network (the stack's loopback addresses stay as they are), sees the given
folders at the same paths, and runs as the manifests run it (deploy/k8s): the image's non-root user, a
read-only root filesystem with a tmpfs /tmp, no capabilities. Settings travel as `-e NAME` (values from
podman's own environment), so no token appears on a command line.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from llmagg.suite import SERVICES

# The image's own copy of the gateway's descriptor set (deploy/k8s/generate.py, GATEWAY_DESCRIPTOR).
IMAGE_DESCRIPTOR = "/app/gateway/llmagg.pb"
# Host settings a container is given besides those the stack passes: every service's own, the suite's, tracing.
_PASSED_PREFIXES = ("LLMAGG_", "OTEL_", *(service.env_prefix for service in SERVICES))


@dataclass
class PodmanLauncher:
    image: str
    mounts: Sequence[Path]  # host folders the processes read or write (the run directory), at the same paths
    containers: dict[str, str] = field(default_factory=dict)  # process name -> its latest container's name
    _started: list[str] = field(default_factory=list)

    def __call__(self, name: str, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
        """The podman command that runs `argv` (a venv's python or envoy: the image's own is used) in a container."""
        container = f"llmagg-{name}-{os.getpid()}-{secrets.token_hex(3)}"
        self.containers[name] = container
        self._started.append(container)
        passed = sorted({*env, *(n for n in os.environ if n.startswith(_PASSED_PREFIXES))})
        volumes = [f"--volume={path}:{path}:U" for path in self.mounts]  # :U: owned by the image's user
        return [
            "podman", "run", "--rm", f"--name={container}", "--pull=never", "--network=host",
            "--read-only", "--tmpfs=/tmp", "--cap-drop=all", "--security-opt=no-new-privileges",
            *volumes, *(f"--env={n}" for n in passed),
            self.image, _in_image(argv[0]), *argv[1:],
        ]  # fmt: skip

    def remove(self) -> None:
        """Remove every container this launcher started that is still there (one whose podman was killed)."""
        if self._started:
            subprocess.run(
                ["podman", "rm", "--force", "--ignore", "--time=2", *self._started], capture_output=True, check=False
            )
            self._started.clear()


def _in_image(program: str) -> str:
    """The image's own program for a venv's (python3.11 -> python, envoy -> envoy; both on the image's PATH)."""
    name = Path(program).name
    return "python" if name.startswith("python") else name
