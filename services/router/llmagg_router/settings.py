"""Router settings: ROUTER_* environment variables, read once at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr

from llmagg.common.settings import ServiceSettings, settings_config
from llmagg.registry import SHIPPED_REGISTRY
from llmagg.suite import service
from llmagg_router.domain.hedging import HedgeMode


class RouterSettings(ServiceSettings):
    model_config = settings_config("router")

    port: int = service("router").port
    metrics_port: int = service("router").metrics_port
    # The REST data path (plain HTTP/1.1) the gateway proxies chat and embeddings to; 0: none (then
    # render the gateway without it: every request through the gRPC port, transcoded).
    http_port: int = service("router").http_port
    # Router processes serving the one port (SO_REUSEPORT; llmagg.common.workers): one machine's cores.
    # Worker i serves /metrics on metrics_port + i. In Kubernetes keep 1 and scale replicas.
    workers: int = Field(default=1, ge=1)
    worker: int | None = None  # set by the parent for each of its workers, not by an operator
    # The user's YAML (accounts, extra providers, fallback chains). LLMAGG_CONFIG is the documented name.
    config: Path | None = Field(default=None, validation_alias=AliasChoices("ROUTER_CONFIG", "LLMAGG_CONFIG"))
    registry: Path = SHIPPED_REGISTRY
    # Backends of the attempt loop's ports (backends.py picks them).
    # config: accounts and keys from LLMAGG_CONFIG; credentials: leased from the credentials service.
    key_source: Literal["config", "credentials"] = "config"
    credentials_address: str | None = None  # host:port of the credentials service
    credentials_token: SecretStr | None = None  # the service token it knows the router by
    # How often the accounts are listed again from the credentials service (rotations and disabled
    # accounts are seen within this; leases end after the credentials service's TTL in any case).
    accounts_refresh_s: float = Field(default=5.0, gt=0)
    # What may be routed to: the configuration alone (shipped registry + LLMAGG_CONFIG), or that kept
    # current by the discovery service's catalogue (WatchCatalog; what `make run` uses).
    catalog: Literal["registry", "discovery"] = "registry"
    discovery_address: str | None = None  # host:port of the discovery service
    discovery_token: SecretStr | None = None  # the service token discovery knows the router by
    # At start, how long to wait for discovery's first catalogue before serving on the configuration.
    catalog_wait_s: float = Field(default=2.0, ge=0)
    # unmetered: no quota tracked (429s steer through cooldowns); ratelimit: the ratelimit service.
    quota_ledger: Literal["unmetered", "ratelimit"] = "unmetered"
    ratelimit_address: str | None = None  # host:port of the ratelimit service
    ratelimit_token: SecretStr | None = None  # the service token it knows the router by
    ratelimit_timeout_s: float = Field(default=1.0, gt=0)  # per Reserve/Headroom call
    # Settlements waiting to be sent; when full, attempts wait to queue theirs (none is dropped).
    settle_queue_size: int = Field(default=10_000, ge=1)
    # false: settlements gather for 100 ms and no answer waits for its accounting (a SIGKILL loses those
    # rows; quotas stay exact, leases are charged up front). true: an answer goes to its client only once the
    # ledger has its row (concurrent answers share one Settle call); measured at ~1.3 ms per request.
    settle_before_answer: bool = False
    # What the router learns of its upstreams (cooldowns, circuits, latency): memory (this replica's own
    # view) or redis (that view, with cooldowns and open circuits shared by every replica through
    # Redis/Valkey, so a 429 seen by one steers them all; adapters/redis_health.py).
    health_store: Literal["memory", "redis"] = "memory"
    # `auto` learns which model answers best per task profile (domain/meta_controller.py); its stats live
    # in this process (memory) or in Valkey at redis_url, shared by the replicas and kept over restarts.
    meta_controller: bool = True
    routing_stats: Literal["memory", "redis"] = "memory"
    routing_stats_sync_s: float = Field(default=1.0, gt=0)
    # Each observation of a model first discounts what was known of it by this: its record is worth at
    # most 1 / (1 - d) observations (100), so a provider that got worse is dropped; 1 never forgets.
    meta_discount: float = Field(default=0.99, gt=0, le=1)
    redis_url: SecretStr = SecretStr("redis://127.0.0.1:6379/0")
    redis_prefix: str = "llmagg"  # every key and channel starts with it: stacks sharing one server stay apart
    redis_timeout_s: float = Field(default=0.5, gt=0)
    # Health events waiting to be written to Redis; when full, new ones are dropped (counted, warned).
    health_queue_size: int = Field(default=10_000, ge=1)
    max_attempts: int = Field(default=6, ge=1)
    request_timeout_s: float = Field(default=300.0, gt=0)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    # A stream attempt must reach its first content in this time; any attempt the client abandons
    # after this long without an answer counts as timed out.
    first_byte_timeout_s: float = Field(default=15.0, gt=0)
    # Longest silence from an upstream: between stream chunks, and before a non-stream answer (which
    # arrives whole, so its first byte comes when the answer is done).
    read_timeout_s: float = Field(default=60.0, gt=0)
    stream_max_s: float = Field(default=900.0, gt=0)  # no stream runs longer
    # Ask upstreams for a stream even when the client did not, and hand the client the whole answer:
    # a provider's first chunk comes in seconds, a whole answer may take a minute to start.
    stream_upstream: bool = True
    # Requests of one session (x-session-id, else `user`) go back to the account that served it last,
    # for this long after its last request; 0 turns affinity off.
    affinity_ttl_s: float = Field(default=3600.0, ge=0)
    # The longest a request that asks to wait (x-llmagg-max-wait) waits for a rate-limited account.
    max_wait_s: float = Field(default=60.0, ge=0)
    # Which requests hedge (start the next candidate beside one slow to bring content): off, those asking
    # for `model_quality: fastest`, or always; `x-llmagg-hedge: true|false` decides per request. The
    # delay is the 95th percentile of the model's recent times to first content, this until it is known.
    hedge: HedgeMode = HedgeMode.FASTEST
    hedge_delay_s: float = Field(default=2.0, gt=0)
    # Put the messages asked and answered on the request's span (gen_ai.input/output.messages). Off:
    # prompts are the users' data and traces are kept and shared more widely than they are.
    trace_content: bool = False
    # A request body larger than this is refused with a 413.
    max_body_bytes: int = Field(default=32 * 1024 * 1024, gt=0)
    # Request bodies being received, parsed and routed at once (each takes several times its size in
    # memory); a request that would go over gets 503 + Retry-After.
    max_inflight_body_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    # An upstream answer larger than this is refused (a gRPC message cannot carry more).
    max_response_bytes: int = Field(default=31 * 1024 * 1024, gt=0)
    max_stream_line_bytes: int = Field(default=2 * 1024 * 1024, gt=0)
    default_cooldown_s: float = Field(default=30.0, ge=0)
    # How long an account whose key a provider rejected (401/403) stays out of rotation.
    rejected_key_cooldown_s: float = Field(default=3600.0, ge=0)
    circuit_failure_threshold: int = Field(default=3, ge=1)
    circuit_open_s: float = Field(default=30.0, ge=0)
    max_upstream_connections: int = Field(default=512, ge=1)
