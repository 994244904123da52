"""How far the router goes for one request: attempts, deadlines, sizes, waiting and hedging (from settings)."""

from __future__ import annotations

from dataclasses import dataclass

from llmagg_router.domain.hedging import HedgeMode


@dataclass(frozen=True)
class RouterLimits:
    max_attempts: int = 6
    # The whole fallback chain must finish (non-stream) or reach first content (stream) in this time.
    request_timeout_s: float = 300.0
    # Cooldown after a 429 that carried no hint of how long to wait.
    default_cooldown_s: float = 30.0
    # A stream attempt must bring its first content within this; a non-stream attempt abandoned after
    # this long without an answer counts as timed out too (its circuit learns of a hung provider).
    first_byte_timeout_s: float = 15.0
    # No stream runs longer than this, however steadily its chunks come.
    stream_max_s: float = 900.0
    # Read non-stream chat answers from upstream as streams (see assembly.py), up to this size.
    stream_upstream: bool = True
    max_answer_bytes: int = 31 * 1024 * 1024
    # The longest a request that asked to wait (x-llmagg-max-wait) waits for a rate-limited account.
    max_wait_s: float = 60.0
    # Which requests hedge (hedging.py), and after how long without content while a provider's model has
    # too few observed times to first content for their 95th percentile.
    hedge: HedgeMode = HedgeMode.FASTEST
    hedge_delay_s: float = 2.0
