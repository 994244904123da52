"""The in-process KeySource: accounts from the config file, a rejected key benched for a while."""

from llmagg.common.secrets import Secret
from llmagg.registry import Account, ConfiguredAccount
from llmagg_router.adapters.config_keys import ConfigKeySource
from llmagg_router.domain.ports import KeyOutcome

from .helpers import FakeClock

A1, A2 = Account("groq", "groq-1", "https://a/v1"), Account("groq", "groq-2", "https://a/v1")
B1 = Account("local", "local-1", "http://127.0.0.1:1/v1")


def source(clock: FakeClock) -> ConfigKeySource:
    configured = [ConfiguredAccount(A1, Secret("k1")), ConfiguredAccount(B1, None), ConfiguredAccount(A2, Secret("k2"))]
    return ConfigKeySource(configured, rejected_for_s=60, clock=clock)


async def test_accounts_keep_the_config_order_per_provider_and_lease_their_own_key():
    keys = source(FakeClock())
    assert keys.accounts("groq") == (A1, A2) and keys.accounts("local") == (B1,) and keys.accounts("none") == ()
    assert await keys.lease(A2) == Secret("k2") and await keys.lease(B1) is None


async def test_a_rejected_key_is_benched_until_its_time_is_up():
    clock = FakeClock()
    keys = source(clock)
    await keys.report(A1, KeyOutcome.REJECTED)
    assert (keys.usable(A1), keys.usable(A2)) == (False, True)
    clock.now += 59
    assert not keys.usable(A1)
    clock.now += 2
    assert keys.usable(A1)


async def test_an_accepted_key_is_usable_again_at_once():
    keys = source(FakeClock())
    await keys.report(A1, KeyOutcome.REJECTED)
    await keys.report(A1, KeyOutcome.ACCEPTED)
    assert keys.usable(A1)
