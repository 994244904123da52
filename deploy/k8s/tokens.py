"""Print the Secrets the suite's pods read, with fresh random tokens: `python deploy/k8s/tokens.py | kubectl apply -n NS -f -`.

Per service `<name>-tokens` (`<NAME>_GATEWAY_TOKEN`, `<NAME>_<PEER>_TOKEN` for every pair of the table's
`calls`, the same value on both sides; `CREDENTIALS_ADMIN_KEY` for credentials) and `gateway-tokens` (the
gateway's SDS file per service, llmagg_gateway/service_tokens.py). The output holds keys: pipe it to
kubectl, never into a file in git. The admin key is printed to stderr once.
"""

from __future__ import annotations

import secrets
import sys

import yaml

from llmagg.suite import SERVICES
from llmagg.suite import service as table_row
from llmagg_gateway.service_tokens import sds_document


def secret(name: str, data: dict[str, str]) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": name}, "type": "Opaque", "stringData": data}


def token_secrets(admin_key: str) -> list[dict]:
    values: dict[str, dict[str, str]] = {s.name: {} for s in SERVICES}
    gateway = {}
    for service in SERVICES:
        token = secrets.token_urlsafe(32)
        values[service.name][f"{service.env_prefix}GATEWAY_TOKEN"] = token
        gateway[f"{service.name}.yaml"] = yaml.safe_dump(sds_document(service.name, token))
        for callee in service.calls:
            pair = secrets.token_urlsafe(32)
            values[service.name][service.token_variable(callee)] = pair
            values[callee][table_row(callee).token_variable(service.name)] = pair
    values["credentials"]["CREDENTIALS_ADMIN_KEY"] = admin_key
    return [*(secret(f"{name}-tokens", data) for name, data in values.items()), secret("gateway-tokens", gateway)]


def main() -> int:
    admin_key = secrets.token_urlsafe(32)
    sys.stdout.write(yaml.safe_dump_all(token_secrets(admin_key), sort_keys=False))
    print(f"admin key (shown once): {admin_key}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
