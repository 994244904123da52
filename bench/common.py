"""What the benchmarks share: a client key made through the gateway, percentiles."""

from __future__ import annotations

import json
import urllib.request

from llmagg_devstack import Stack


def create_client_key(stack: Stack, name: str = "bench") -> str:
    """A client key made through the gateway's admin API with the admin key the stack wrote at first start."""
    request = urllib.request.Request(
        f"{stack.base_url}/admin/keys",
        data=json.dumps({"name": name, "scope": "client"}).encode(),
        headers={
            "Authorization": f"Bearer {stack.admin_key_file.read_text().strip()}",
            "Content-Type": "application/json",
        },
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["secret"]


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
