"""Source `community`: the community list of free LLM APIs (cheahjs/free-llm-api-resources README).

Read from a URL (conditional GET: an unchanged list costs a 304) or a local file (the snapshot shipped
in this package, which `make run` and the tests use: nothing leaves the machine).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from llmagg_discovery.adapters.http import MAX_BODY_BYTES, HttpClient
from llmagg_discovery.domain.community_list import parse_community_list
from llmagg_discovery.domain.community_mapping import SOURCE, KnownModel, community_report
from llmagg_discovery.domain.ports import SourceContext, SourceError
from llmagg_discovery.domain.records import SourceReport

SHIPPED_SNAPSHOT = Path(__file__).resolve().parents[1] / "data" / "free-llm-api-resources" / "README.md"


def _read_file(path: Path) -> str:
    with path.open("rb") as handle:
        data = handle.read(MAX_BODY_BYTES + 1)
    if len(data) > MAX_BODY_BYTES:
        raise SourceError(f"{path} is larger than {MAX_BODY_BYTES} bytes")
    return data.decode("utf-8", errors="replace")


class CommunitySource:
    name = SOURCE

    def __init__(self, location: str, http: HttpClient, interval_s: float, timeout_s: float) -> None:
        self._location = location
        self._http = http
        self.interval_s = interval_s
        self.timeout_s = timeout_s

    async def _text(self) -> str:
        if self._location.startswith(("http://", "https://")):
            return (await self._http.get_ok(self._location, cache_key=self._location)).text
        path = Path(self._location.removeprefix("file://"))
        try:
            return await asyncio.to_thread(_read_file, path)
        except OSError as problem:
            raise SourceError(f"cannot read {path}: {problem.strerror}") from None

    async def run(self, context: SourceContext) -> SourceReport:
        listing = parse_community_list(await self._text())
        if not listing.providers:
            raise SourceError("no provider section found: not the community list")
        catalogue = context.catalogue
        known: dict[str, list[KnownModel]] = {}
        for key in catalogue.models:  # type: ignore[attr-defined]
            known.setdefault(key.provider, []).append(KnownModel(key.model, catalogue.merged_model(key).name))  # type: ignore[attr-defined]
        return community_report(listing, context.providers, known)
