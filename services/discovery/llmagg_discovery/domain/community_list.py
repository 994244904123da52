"""The community list cheahjs/free-llm-api-resources (its generated README) -> providers, models, limits, credits.

The README is generated markdown: `## Free Providers` and `## Providers with trial credits` hold one
`### [Name](url)` section per provider, with `**Limits:**` (a line, the next line, `<br>`-joined link
text, or `(per-model)`), HTML tables of `Model Name | Model Limits`, `**Credits:**`, `**Models:**`,
`**Requirements:**`, `- model` list items, `* note` items and free text. Whatever the input, the
parser never raises: what it cannot read is reported in `problems` and skipped.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from llmagg_discovery.domain.limits import money, parse_limits, plain_text

_HEADING = re.compile(r"^(#{2,3})\s+(.*?)\s*#*\s*$")
_LINKED = re.compile(r"^\[(?P<text>[^\]]*)\]\((?P<url>[^)\s]*)\)")
_LABEL = re.compile(r"^\*\*(?P<label>[^*:]+?)(?:\s*\((?P<qualifier>[^)]*)\))?:\*\*\s*(?P<rest>.*)$")
_CELL = re.compile(r"<t([dh])[^>]*>(.*?)</t[dh]>", re.IGNORECASE | re.DOTALL)
_ROW = re.compile(r"<tr[^>]*>(.*?)</tr>", re.IGNORECASE | re.DOTALL)
_SHARED = re.compile(r"\bshare\b.*\b(common|same|one)\b.*\bquota\b", re.IGNORECASE)
_DESCRIPTION = re.compile(r"\bmodels\b|^(various|any|all)\b", re.IGNORECASE)


@dataclass(frozen=True)
class ListedModel:
    name: str
    url: str = ""
    limits: dict[str, float] = field(default_factory=dict)
    limit_notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ListedProvider:
    name: str
    url: str
    tier: str  # free | trial
    limits: dict[str, float] = field(default_factory=dict)
    per_model_limits: bool = False  # `**Limits (per-model):**`: each model has these limits of its own
    limit_notes: tuple[str, ...] = ()  # limits text that is no plain figure ("Up to 1000 requests/day with ...")
    credits_usd: float | None = None
    credits_text: str = ""
    shared_quota: bool = False
    models: tuple[ListedModel, ...] = ()
    model_descriptions: tuple[str, ...] = ()  # "Various open models": what it serves, without names
    notes: tuple[str, ...] = ()
    requirements: tuple[str, ...] = ()


@dataclass(frozen=True)
class CommunityList:
    providers: tuple[ListedProvider, ...]
    problems: tuple[str, ...] = ()


def _tier(title: str) -> str | None:
    lowered = title.lower()
    if "trial" in lowered or "credit" in lowered:
        return "trial"
    if "free" in lowered:
        return "free"
    return None


def _linked(text: str) -> tuple[str, str]:
    """(text, url) of `[text](url)`, or (text, "") for plain text."""
    match = _LINKED.match(text.strip())
    if match:
        return plain_text(match.group("text")), match.group("url")
    return plain_text(text), ""


@dataclass
class _Section:
    """A provider section being read."""

    name: str
    url: str
    tier: str
    limits: dict[str, float] = field(default_factory=dict)
    per_model_limits: bool = False
    limit_notes: list[str] = field(default_factory=list)
    credits_usd: float | None = None
    credits_text: str = ""
    shared_quota: bool = False
    models: list[ListedModel] = field(default_factory=list)
    descriptions: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    requirements: list[str] = field(default_factory=list)
    pending_label: str = ""  # a label whose value is on the next line(s)
    pending_qualifier: str = ""
    table: list[str] | None = None  # lines of an open <table>

    def add_limits(self, text: str, qualifier: str) -> None:
        parsed = parse_limits(text)
        if "model" in qualifier.lower():
            self.per_model_limits = True
        for name, value in parsed.limits.items():
            self.limits[name] = min(value, self.limits.get(name, value))
        if parsed.credits_usd is not None and self.credits_usd is None:
            self.credits_usd = parsed.credits_usd
            self.credits_text = plain_text(text)
        self.limit_notes.extend(parsed.notes)

    def add_label(self, label: str, qualifier: str, value: str) -> None:
        match label.lower():
            case "limits":
                self.add_limits(value, qualifier)
            case "credits":
                self.credits_text = plain_text(value)
                self.credits_usd = money(value)
            case "models":
                self.add_item(value, model_list=True)
            case "requirements":
                self.requirements.append(plain_text(value))
            case _:
                self.notes.append(f"{label}: {plain_text(value)}")

    def add_item(self, text: str, model_list: bool) -> None:
        name, url = _linked(text)
        if not name:
            return
        if not model_list:
            self.notes.append(name)
        elif _DESCRIPTION.search(name):
            self.descriptions.append(name)
        else:
            self.models.append(ListedModel(name, url))

    def add_table(self, lines: list[str], problems: list[str]) -> None:
        for row in _ROW.findall(" ".join(lines)):
            cells = _CELL.findall(row)
            if not cells or cells[0][0].lower() == "h":
                continue  # the header row
            name = plain_text(html.unescape(cells[0][1]))
            if not name:
                problems.append(f"{self.name}: a table row without a model name")
                continue
            parsed = parse_limits(html.unescape(cells[1][1])) if len(cells) > 1 else parse_limits("")
            self.models.append(ListedModel(name, "", parsed.limits, parsed.notes))

    def finish(self) -> ListedProvider:
        return ListedProvider(
            name=self.name,
            url=self.url,
            tier=self.tier,
            limits=self.limits,
            per_model_limits=self.per_model_limits,
            limit_notes=tuple(self.limit_notes),
            credits_usd=self.credits_usd,
            credits_text=self.credits_text,
            shared_quota=self.shared_quota,
            models=tuple(self.models),
            model_descriptions=tuple(self.descriptions),
            notes=tuple(self.notes),
            requirements=tuple(self.requirements),
        )


class _Reader:
    def __init__(self) -> None:
        self.tier: str | None = None
        self.section: _Section | None = None
        self.providers: list[ListedProvider] = []
        self.problems: list[str] = []
        self.in_model_list = False

    def close_section(self) -> None:
        section = self.section
        if section is None:
            return
        if section.table is not None:
            self.problems.append(f"{section.name}: a table that is never closed")
            section.add_table(section.table, self.problems)
        self.providers.append(section.finish())
        self.section = None

    def heading(self, level: int, title: str) -> None:
        self.close_section()
        if level == 2:
            self.tier = _tier(plain_text(title))
            return
        if self.tier is None:
            return  # a provider outside the free and trial sections (or before them): not a listing
        name, url = _linked(title)
        if name:
            self.section = _Section(name, url, self.tier)
            self.in_model_list = False

    def line(self, raw: str) -> None:
        text = raw.strip()
        heading = _HEADING.match(text)
        if heading:
            self.heading(len(heading.group(1)), heading.group(2))
            return
        section = self.section
        if section is None:
            return
        if section.table is not None:
            section.table.append(text)
            if "</table>" in text.lower():
                section.add_table(section.table, self.problems)
                section.table = None
            return
        lowered = text.lower()
        if lowered.startswith("<table"):
            section.table = [text]
            if "</table>" in lowered:
                section.add_table(section.table, self.problems)
                section.table = None
            return
        if text.startswith("<"):
            if "</table>" in lowered or "</tbody>" in lowered:
                self.problems.append(f"{section.name}: a table end without its table ({text[:40]})")
            return
        if not text:
            if section.pending_label and section.pending_label.lower() != "models":
                return  # the value follows after the blank line
            return
        label = _LABEL.match(text)
        if label:
            rest = label.group("rest").strip()
            name, qualifier = label.group("label").strip(), label.group("qualifier") or ""
            self.in_model_list = name.lower() == "models"
            if rest:
                section.add_label(name, qualifier, rest)
                section.pending_label = ""
            else:
                section.pending_label, section.pending_qualifier = name, qualifier
            return
        if text.startswith(("- ", "* ", "+ ")):
            bullet, item = text[0], text[2:]
            section.pending_label = ""
            section.add_item(item, model_list=bullet == "-" or self.in_model_list)
            return
        if section.pending_label:
            section.add_label(section.pending_label, section.pending_qualifier, text)
            section.pending_label = ""
            return
        if _SHARED.search(text):
            section.shared_quota = True
        section.notes.append(plain_text(text))


def parse_community_list(markdown: str) -> CommunityList:
    """Every provider section of the list; never raises (unreadable parts are skipped and reported)."""
    reader = _Reader()
    in_comment = False
    for raw in markdown.splitlines():
        stripped = raw.strip()
        if in_comment or stripped.startswith("<!--"):
            in_comment = "-->" not in stripped
            continue
        try:
            reader.line(raw)
        except Exception as problem:  # a line this parser cannot read must not cost the rest of the list
            reader.problems.append(f"skipped a line ({type(problem).__name__}): {stripped[:60]}")
    reader.close_section()
    return CommunityList(tuple(reader.providers), tuple(reader.problems))
