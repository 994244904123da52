"""`llmagg models` rows: one per model or change, enum prefixes dropped, limits compact."""

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
