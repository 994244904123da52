"""The credentials KeySource's own bookkeeping of rejected accounts, against a scripted credentials stub."""

from __future__ import annotations

from llmagg.credentials.v1 import credentials_pb2 as pb
from llmagg.registry import Account, Provider
from llmagg_router.adapters.credentials_keys import CredentialsKeySource
from llmagg_router.domain.ports import KeyOutcome

ACCOUNT = Account("p", "p-acct", "http://127.0.0.1:9/v1")


class ScriptedCredentials:
    """ListAccounts answers the account as `listed` last set it; a rejection report disables it."""

    def __init__(self) -> None:
        self.account = pb.Account(
            provider="p", alias="p-acct", enabled=True, key_version=1, updated_at="2026-01-01T00:00:00Z"
        )

    def listed(self, **changes) -> pb.Account:
        self.account = pb.Account(**{**_fields(self.account), **changes})
        return self.account

    async def ListAccounts(self, request, **_):
        return pb.ListAccountsResponse(accounts=[self.account])

    async def ReportOutcome(self, request, **_):
        if request.outcome == pb.OUTCOME_REJECTED:
            self.listed(
                enabled=False,
                disabled_by="upstream",
                disabled_at="2026-01-01T00:00:00Z",
                updated_at="2026-01-01T00:00:05Z",
            )
        return pb.ReportOutcomeResponse(account=self.account)


def _fields(account: pb.Account) -> dict:
    return {field.name: value for field, value in account.ListFields()}


def key_source(credentials: ScriptedCredentials) -> CredentialsKeySource:
    provider = Provider(id="p", name="P", base_url=ACCOUNT.base_url, auth="none")
    # Wall time 0: an upstream-disabled account is never due its hourly probe in these tests.
    source = CredentialsKeySource("127.0.0.1:9", None, {"p": provider}, wall_clock=lambda: 0.0)
    source._client._stub = credentials
    return source


async def test_an_enable_listed_after_the_recorded_rejection_lifts_it():
    credentials = ScriptedCredentials()
    keys = key_source(credentials)
    await keys.refresh()
    await keys.report(ACCOUNT, KeyOutcome.REJECTED)
    await keys.refresh()
    assert keys.usable(ACCOUNT) is False  # listed disabled: still benched
    credentials.listed(
        enabled=True, disabled_by="", disabled_at="", updated_at="2026-01-01T00:00:05Z"
    )  # enabled in the same second
    await keys.refresh()
    assert keys.usable(ACCOUNT) is True


async def test_a_listing_read_before_the_rejection_was_recorded_does_not_lift_it():
    credentials = ScriptedCredentials()
    keys = key_source(credentials)
    await keys.refresh()
    stale = pb.ListAccountsResponse(accounts=[credentials.account])  # read before the report landed
    await keys.report(ACCOUNT, KeyOutcome.REJECTED)
    keys._apply(stale.accounts, keys._client.listings)
    assert keys.usable(ACCOUNT) is False


async def test_a_rejection_credentials_never_heard_of_is_kept_for_its_cooldown():
    credentials = ScriptedCredentials()
    keys = key_source(credentials)
    await keys.refresh()

    async def unreachable(request, **_):
        return pb.ReportOutcomeResponse()  # no account: nothing was recorded

    credentials.ReportOutcome = unreachable
    await keys.report(ACCOUNT, KeyOutcome.REJECTED)
    credentials.listed(updated_at="2026-01-01T00:00:09Z")  # enabled all along, as far as credentials knows
    await keys.refresh()
    assert keys.usable(ACCOUNT) is False
