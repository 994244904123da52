"""The community list parser on the shipped snapshot: every provider section, every limit style, the trial
credits, the malformed tail; and on mangled markdown, never a crash."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmagg_discovery.domain.community_list import parse_community_list
from llmagg_discovery.domain.limits import parse_limits

from .helpers import SNAPSHOT

FREE = [
    "OpenRouter", "Google AI Studio", "NVIDIA NIM", "Mistral (La Plateforme)", "Mistral (Codestral)",
    "HuggingFace Inference Providers", "Vercel AI Gateway", "OpenCode Zen", "Cerebras", "Groq", "Cohere",
    "GitHub Models", "Cloudflare Workers AI",
]  # fmt: skip
TRIAL = [
    "Fireworks", "Baseten", "Nebius", "Novita", "AI21", "Upstage", "NLP Cloud",
    "Alibaba Cloud (International) Model Studio", "Modal", "Inference.net", "Hyperbolic", "SambaNova Cloud",
    "Scaleway Generative APIs",
]  # fmt: skip


@pytest.fixture(scope="module")
def listing():
    return parse_community_list(SNAPSHOT.read_text())


@pytest.fixture(scope="module")
def by_name(listing):
    return {p.name: p for p in listing.providers}


def test_every_provider_section_is_recovered_in_order_with_its_tier(listing):
    assert [p.name for p in listing.providers] == FREE + TRIAL
    assert {p.tier for p in listing.providers[: len(FREE)]} == {"free"}
    assert {p.tier for p in listing.providers[len(FREE) :]} == {"trial"}


def test_limits_on_the_label_line_after_it_and_as_br_joined_link_text(by_name):
    assert by_name["NVIDIA NIM"].limits == {"rpm": 40}
    assert by_name["Mistral (Codestral)"].limits == {"rpm": 30, "rpd": 2000}
    assert by_name["OpenRouter"].limits == {"rpm": 20, "rpd": 50}
    assert by_name["Cohere"].limits == {"rpm": 20, "rpmonth": 1000}
    assert by_name["Cloudflare Workers AI"].limits == {"neurons_per_day": 10000}


def test_a_conditional_upgrade_and_unparseable_limits_are_notes_not_figures(by_name):
    assert by_name["OpenRouter"].limit_notes == ("Up to 1000 requests/day with $10 lifetime topup",)
    github = by_name["GitHub Models"]
    assert github.limits == {} and github.limit_notes[0].startswith("Dependent on Copilot subscription tier")


def test_per_model_limits_with_a_per_second_rate(by_name):
    mistral = by_name["Mistral (La Plateforme)"]
    assert mistral.per_model_limits
    assert mistral.limits == {"rpm": 60, "tpm": 500_000, "tpmonth": 1_000_000_000}


def test_money_in_the_limits_line_is_credit(by_name):
    assert (by_name["HuggingFace Inference Providers"].credits_usd, by_name["Vercel AI Gateway"].credits_usd) == (
        0.10,
        5.0,
    )


def test_table_limits_per_model_in_every_unit(by_name):
    cerebras = {m.name: m.limits for m in by_name["Cerebras"].models}
    assert cerebras["gpt-oss-120b"] == {
        "rpm": 30, "tpm": 60_000, "rph": 900, "tph": 1_000_000, "rpd": 14_400, "tpd": 1_000_000,
    }  # fmt: skip
    groq = {m.name: m.limits for m in by_name["Groq"].models}
    assert len(groq) == 15
    assert groq["Llama 3.3 70B"] == {"rpd": 1000, "tpm": 12_000}
    assert groq["Whisper Large v3"] == {"rpd": 2000}
    assert groq["canopylabs/orpheus-v1-english"] == {}  # an empty cell
    gemini = {m.name: m.limits for m in by_name["Google AI Studio"].models}
    assert len(gemini) == 13 and gemini["Gemma 3 27B Instruct"] == {"tpm": 15_000, "rpd": 14_400, "rpm": 30}


def test_model_lists_keep_links_and_tell_models_from_descriptions(by_name):
    openrouter = by_name["OpenRouter"]
    assert len(openrouter.models) == 20 and openrouter.shared_quota
    assert openrouter.models[0].url == "https://openrouter.ai/nousresearch/hermes-3-llama-3.1-405b:free"
    assert len(by_name["GitHub Models"].models) == 37
    assert len(by_name["Cohere"].models) == 11 and by_name["Cohere"].shared_quota
    assert [m.name for m in by_name["Mistral (Codestral)"].models] == ["Codestral"]
    assert by_name["NVIDIA NIM"].models == () and by_name["NVIDIA NIM"].model_descriptions == ("Various open models",)
    assert [m.name for m in by_name["OpenCode Zen"].models] == [
        "Big Pickle Stealth", "Nemotron 3 Super Free", "DeepSeek V4 Flash Free",
    ]  # fmt: skip


def test_trial_credits_in_every_wording(by_name):
    credits = {name: (by_name[name].credits_usd, by_name[name].credits_text) for name in TRIAL}
    assert credits == {
        "Fireworks": (1.0, "$1"),
        "Baseten": (30.0, "$30"),
        "Nebius": (1.0, "$1"),
        "Novita": (0.5, "$0.5 for 1 year"),
        "AI21": (10.0, "$10 for 3 months"),
        "Upstage": (10.0, "$10 for 3 months"),
        "NLP Cloud": (15.0, "$15"),
        "Alibaba Cloud (International) Model Studio": (None, "1 million tokens/model"),
        "Modal": (5.0, "$5/month upon sign up, $30/month with payment method added"),
        "Inference.net": (1.0, "$1, $25 on responding to email survey"),
        "Hyperbolic": (1.0, "$1"),
        "SambaNova Cloud": (5.0, "$5 for 3 months"),
        "Scaleway Generative APIs": (None, "1,000,000 free tokens"),
    }
    assert by_name["NLP Cloud"].requirements == ("Phone number verification",)
    assert len(by_name["Scaleway Generative APIs"].models) == 18 and len(by_name["SambaNova Cloud"].models) == 6


def test_the_malformed_tail_is_reported_and_survived(listing, by_name):
    assert listing.problems == ("Cloudflare Workers AI: a table end without its table (</tbody></table>)",)
    assert len(by_name["Cloudflare Workers AI"].models) == 26
    assert by_name["Fireworks"].credits_usd == 1.0  # the sections after it are whole


def test_notes_and_requirements_are_kept(by_name):
    assert by_name["NVIDIA NIM"].notes == (
        "Phone number verification required.",
        "Models tend to be context window limited.",
    )
    assert (
        by_name["Mistral (La Plateforme)"].notes[0] == "Free tier (Experiment plan) requires opting into data training"
    )


@pytest.mark.parametrize(
    ("text", "limits", "credits", "notes"),
    [
        ("2 requests/second", {"rpm": 120}, None, ()),
        ("1.5 million tokens/day", {"tpd": 1_500_000}, None, ()),
        ("10 requests/minute, 5 requests/minute", {"rpm": 5}, None, ()),
        ("5 requests/week", {}, None, ("5 requests/week",)),
        ("$3 after verifying your phone", {}, None, ("$3 after verifying your phone",)),
        ("", {}, None, ()),
    ],
)
def test_limit_texts(text, limits, credits, notes):
    parsed = parse_limits(text)
    assert (parsed.limits, parsed.credits_usd, parsed.notes) == (limits, credits, notes)


def test_a_document_that_is_not_the_list_has_no_providers():
    assert parse_community_list("# Hello\n\nNothing here.\n### [Stray](https://x.example)\n").providers == ()


LINES = SNAPSHOT.read_text().splitlines()
MARKUP = st.sampled_from(
    ["###", "### [P](https://p.example)", "## Free Providers", "**Limits:**", "**Credits:**", "**Models:**",
     "<table>", "</table>", "<tr><td>", "</td>", "<tr><td>m</td></tr>", "<th>", "<br>",
     "[", "](", ")", "- ", "* ", "$", "requests/minute", ",", "\x00", "\u202e", "🙂", "<!--", "-->", "\r"]
)  # fmt: skip
MANGLED_LINE = st.one_of(st.sampled_from(LINES), st.text(max_size=80), st.lists(MARKUP, max_size=8).map("".join))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(MANGLED_LINE, max_size=120), st.randoms(use_true_random=False))
def test_mangled_markdown_never_crashes_the_parser(lines, random):
    random.shuffle(lines)
    listing = parse_community_list("\n".join(lines))
    for provider in listing.providers:
        assert provider.tier in ("free", "trial")
        assert all(value >= 0 for value in provider.limits.values())


SECTION = st.tuples(
    st.sampled_from(["## Free Providers", "## Providers with trial credits", "## Other"]),
    st.lists(st.tuples(st.text(max_size=12), st.lists(MANGLED_LINE, max_size=12)), max_size=5),
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(SECTION, max_size=3))
def test_mangled_sections_never_crash_the_parser(sections):
    lines = []
    for heading, providers in sections:
        lines.append(heading)
        for name, body in providers:
            lines += [f"### [{name}](https://{name or 'x'}.example)", *body]
    parse_community_list("\n".join(lines))


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_the_snapshot_with_lines_cut_repeated_or_garbled_still_parses(data):
    lines = list(LINES)
    for _ in range(data.draw(st.integers(0, 20))):
        at = data.draw(st.integers(0, len(lines) - 1))
        action = data.draw(st.sampled_from(["cut", "repeat", "truncate", "garble"]))
        if action == "cut":
            del lines[at]
        elif action == "repeat":
            lines.insert(at, lines[at])
        elif action == "truncate":
            lines[at] = lines[at][: data.draw(st.integers(0, len(lines[at])))]
        else:
            lines[at] = data.draw(st.text(max_size=40)) + lines[at]
        if not lines:
            break
    parse_community_list("\n".join(lines))
