"""`llmagg models` rows: one per model or change, enum prefixes dropped, limits compact."""

import contextlib
import io

from llmagg_cli.main import parser
from llmagg_cli.models import change_row, model_row


def test_a_model_row_says_state_free_context_limits_and_expiry():
    model = {
        "provider": "openrouter", "model": "vendor/m:free", "state": "MODEL_STATE_SUSPENDED", "free": True,
        "context_length": "65536", "quality": 3, "limits": {"rpd": 50, "rpm": 20.0}, "expiration_date": "2026-12-31",
    }  # fmt: skip
    assert model_row(model) == [
        "openrouter",
        "vendor/m:free",
        "suspended",
        "yes",
        65536,
        3,
        "rpd=50,rpm=20",
        "2026-12-31",
    ]
    bare = {**model, "free": False, "context_length": "0", "limits": {}, "expiration_date": ""}
    assert model_row(bare)[3:] == ["no", "-", 3, "-", "-"]


def test_a_change_row_names_the_kind_in_words():
    change = {
        "at": "2026-08-01T00:00:00Z", "kind": "CHANGE_KIND_RETIRED", "provider": "github-models", "model": "",
        "source": "registry", "detail": "retired on 2026-07-30",
    }  # fmt: skip
    assert change_row(change) == [
        "2026-08-01T00:00:00Z", "retired", "github-models", "-", "registry", "retired on 2026-07-30",
    ]  # fmt: skip


class CannedGateway:
    """Answers the two calls `models list` makes: the discovery catalogue and the router's model list."""

    def __init__(self, routable: list[str]) -> None:
        self.routable = routable
        self.calls: list[tuple[str, dict]] = []

    def call(self, method, path, body=None, query=None):
        self.calls.append((path, query or {}))
        if path == "/v1/models":
            return {"object": "list", "data": [{"id": "auto"}, *({"id": model} for model in self.routable)]}
        model = {"state": "MODEL_STATE_ACTIVE", "free": True, "context_length": "8192", "quality": 3, "limits": {}}
        listed = [
            {**model, "provider": p, "model": m} for p, m in (("groq", "llama"), ("sim", "small"), ("sim", "big"))
        ]
        return {"catalog": {"revision": 7, "models": listed}}


def _listed(routable: list[str], *argv: str) -> tuple[CannedGateway, dict]:
    import json

    gateway = CannedGateway(routable)
    args = parser().parse_args(["models", "list", "--json", *argv])
    with contextlib.redirect_stdout(io.StringIO()) as out:
        args.func(gateway, args)
    return gateway, json.loads(out.getvalue())


def test_models_list_shows_what_can_be_routed_unless_asked_for_all():
    gateway, shown = _listed(["sim/small"])
    assert [(m["provider"], m["model"]) for m in shown["catalog"]["models"]] == [("sim", "small")]
    assert [path for path, _ in gateway.calls] == ["/v1/admin/discovery/catalog", "/v1/models"]
    gateway, shown = _listed(["sim/small"], "--all")
    assert [(m["provider"], m["model"]) for m in shown["catalog"]["models"]] == [
        ("groq", "llama"), ("sim", "small"), ("sim", "big"),
    ]  # fmt: skip
    assert gateway.calls[0][1]["include_retired"] == "true" and len(gateway.calls) == 1


def test_with_nothing_routable_the_table_says_how_to_change_that(capsys):
    gateway = CannedGateway([])
    args = parser().parse_args(["models", "list"])
    args.func(gateway, args)
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0].split()[:2] == ["PROVIDER", "MODEL"] and len(captured.out.splitlines()) == 2
    assert "no model can be routed yet" in captured.err and "--all" in captured.err
