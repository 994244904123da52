"""`llmagg status` rows: one per account and model, what keeps it from serving, problems first."""

from llmagg_cli.status import rows

CLOSED = {"state": "closed", "failures": 0}


def provider(name, accounts, models, endpoint=CLOSED):
    return {
        "provider": name,
        "accounts": accounts,
        "endpoints": [{"endpoint": f"https://{name}.example:443", "circuit": endpoint}],
        "models": models,
    }


def test_problems_come_first_and_each_row_names_the_one_that_applies():
    state = {
        "providers": [
            provider(
                "alpha",
                [
                    {"alias": "a-1", "usable": True, "cooling": [{"model": "m1", "remaining_s": 41.6}]},
                    {"alias": "a-2", "usable": False, "cooling": []},
                ],
                [
                    {"model": "m1", "circuit": CLOSED, "latency_ms": 120.4},
                    {"model": "m2", "circuit": {"state": "open", "failures": 3, "reopens_in_s": 9}, "latency_ms": None},
                ],
            ),
            provider(
                "beta",
                [{"alias": "b-1", "usable": True, "cooling": [{"model": "*", "remaining_s": 5}]}],
                [{"model": "m1", "circuit": CLOSED, "latency_ms": None}],
                endpoint={"state": "half_open", "failures": 4, "reopens_in_s": 0},
            ),
            provider(
                "aardvark",
                [{"alias": "z-1", "usable": True, "cooling": [{"model": "other", "remaining_s": 5}]}],
                [{"model": "m1", "circuit": CLOSED, "latency_ms": 80}],
            ),
        ]
    }
    assert rows(state) == [
        ["alpha", "a-1", "m1", "cooling 42s", "120 ms"],
        ["alpha", "a-1", "m2", "circuit open (3 failures)", "-"],
        ["alpha", "a-2", "m1", "disabled", "120 ms"],
        ["alpha", "a-2", "m2", "circuit open (3 failures)", "-"],
        ["beta", "b-1", "m1", "circuit half_open (4 failures)", "-"],
        ["aardvark", "z-1", "m1", "ok", "80 ms"],
    ]
