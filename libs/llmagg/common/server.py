"""Async gRPC server bootstrap shared by every service: health, reflection, interceptors, shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from prometheus_client import REGISTRY, CollectorRegistry

from llmagg.common.caller_auth import CallerAuthInterceptor, caller_tokens
from llmagg.common.grpc_client import keepalive_policy
from llmagg.common.grpc_interceptors import ErrorMappingInterceptor, TracingInterceptor
from llmagg.common.logging import configure_logging, log_fields
from llmagg.common.metrics import RpcMetrics, serve_metrics
from llmagg.common.secrets import Secret
from llmagg.common.settings import ServiceSettings
from llmagg.common.telemetry import configure_tracing, shutdown_tracing

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReadinessCheck:
    """A dependency the service needs (Vault, Redis, a peer): `probe` raises or returns False when it is unusable.

    Each check is reported under its own health name; a `critical` one also takes the whole service
    (and so the gateway's traffic) down while it fails, a non-critical one only itself (degraded).
    """

    name: str
    probe: Callable[[], Awaitable[bool | None]]
    critical: bool = True


class Companion(Protocol):
    """Another port a service serves beside gRPC (the router's REST data path): started once the gRPC
    server is, with its pieces (settings, metrics, caller tokens, whether tracing is on); stopped with it,
    after the drain, within the grace period."""

    async def start(self, server: GrpcServer) -> None: ...

    async def stop(self, grace_s: float) -> None: ...


@dataclass(frozen=True)
class ServiceBinding:
    """A servicer and the generated `add_XServicer_to_server` that registers it."""

    name: str  # full proto name, e.g. "llmagg.router.v1.RouterService"
    servicer: object
    add_to_server: Callable[[object, grpc.aio.Server], None]


class GrpcServer:
    def __init__(
        self,
        service: str,
        settings: ServiceSettings,
        bindings: Sequence[ServiceBinding],
        readiness: Sequence[ReadinessCheck] = (),
        interrupt: Callable[[], None] | None = None,
        registry: CollectorRegistry = REGISTRY,
        reuse_port: bool = False,
        companions: Sequence[Companion] = (),
    ) -> None:
        """`interrupt` is called at shutdown when RPCs are still running shortly before the grace period
        ends: the service ends them with an explicit error rather than letting them be cut. With
        `reuse_port` the port is shared with the service's other workers (llmagg.common.workers); without,
        a port another process serves on is an error."""
        self.service = service
        self._interrupt = interrupt
        self.settings = settings
        self.health = health.aio.HealthServicer()
        self._checks = tuple(readiness)
        reserved = {"", *(b.name for b in bindings)}
        names = [check.name for check in self._checks]
        if reserved & set(names) or len(set(names)) != len(names):
            raise ValueError(f"readiness check names must be unique and not a service's name: {names}")
        self._failing: dict[str, str] = {}  # check name -> why it fails
        self._watch: asyncio.Task[None] | None = None
        self._bindings = tuple(bindings)
        self._names = [b.name for b in bindings]
        self._server: grpc.aio.Server | None = None
        self.rpc_metrics = RpcMetrics(service, registry) if settings.metrics_port else None
        self._registry = registry
        self.reuse_port = reuse_port
        self._companions = tuple(companions)
        self.tracing = False
        self.caller_tokens: dict[str, Secret] = {}  # by caller, once built (a companion checks the same)
        self.port = 0
        self.metrics_port = 0

    def _build(self) -> grpc.aio.Server:
        """The grpc.aio server, made on the loop that will run it (it binds to the loop it is made on)."""
        interceptors: list[grpc.aio.ServerInterceptor] = [ErrorMappingInterceptor(self.rpc_metrics)]
        self.tracing = configure_tracing(self.service)
        if self.tracing:
            interceptors.insert(0, TracingInterceptor(self.service))
        tokens = self.caller_tokens = caller_tokens(self.service, self.settings)
        if not tokens:
            log.warning(
                "no caller token is set (%sGATEWAY_TOKEN, ...): every call but health checks will be refused",
                self.settings.model_config.get("env_prefix", ""),
            )
        interceptors.insert(0, CallerAuthInterceptor(tokens, self.rpc_metrics))
        limit = self.settings.max_message_bytes
        server = grpc.aio.server(
            interceptors=interceptors,
            options=[
                ("grpc.max_receive_message_length", limit),
                ("grpc.max_send_message_length", limit),
                ("grpc.max_metadata_size", self.settings.max_metadata_bytes),
                ("grpc.absolute_max_metadata_size", self.settings.max_metadata_bytes),
                ("grpc.so_reuseport", int(self.reuse_port)),
                *keepalive_policy(self.settings.keepalive_s),
            ],
        )
        for binding in self._bindings:
            binding.add_to_server(binding.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            [*self._names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            server,
        )
        return server

    async def start(self) -> int:
        if self.settings.metrics_port:
            self.metrics_port = serve_metrics(self.settings.host, self.settings.metrics_port, self._registry)
        self._server = self._build()
        self.port = self._server.add_insecure_port(f"{self.settings.host}:{self.settings.port}")
        if not self.port:
            raise OSError(f"cannot bind {self.settings.host}:{self.settings.port}")
        await self._server.start()
        for companion in self._companions:
            await companion.start(self)
        await self.check_readiness()
        if self._checks:
            self._watch = asyncio.create_task(self._watch_readiness())
        log.info(
            "%s serving on %s:%d",
            self.service,
            self.settings.host,
            self.port,
            extra=log_fields(port=self.port, metrics_port=self.metrics_port),
        )
        return self.port

    async def check_readiness(self) -> bool:
        """Run every check once and publish the result; True when every critical check passes."""
        serving, not_serving = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
        problems = await asyncio.gather(*(self._probe(check) for check in self._checks))
        for check, problem in zip(self._checks, problems, strict=True):
            was = self._failing.get(check.name)
            if problem is None:
                self._failing.pop(check.name, None)
                if was is not None:
                    log.info("%s is reachable again", check.name, extra=log_fields(check=check.name))
            else:
                self._failing[check.name] = problem
                if was is None:
                    log.warning(
                        "%s is unusable: %s",
                        check.name,
                        problem,
                        extra=log_fields(check=check.name, critical=check.critical),
                    )
            await self.health.set(check.name, serving if problem is None else not_serving)
        ready = not any(check.critical and check.name in self._failing for check in self._checks)
        for name in ["", *self._names]:
            await self.health.set(name, serving if ready else not_serving)
        return ready

    async def _probe(self, check: ReadinessCheck) -> str | None:
        """None when the check passes, else why it does not."""
        try:
            async with asyncio.timeout(self.settings.readiness_interval_s):
                ok = await check.probe()
        except Exception as exc:  # a probe's failure is its verdict, whatever it raises
            return f"{type(exc).__name__}: {exc}"
        return None if ok is not False else "the check failed"

    async def _watch_readiness(self) -> None:
        while True:
            await asyncio.sleep(self.settings.readiness_interval_s)
            try:
                await self.check_readiness()
            except Exception:  # the watch must outlive any one bad round
                log.exception("readiness check round failed")

    async def stop(self) -> None:
        """Report NOT_SERVING, give the gateway `drain_s` to notice, then stop within `grace_s`."""
        if self._watch is not None:
            self._watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watch
        await self.health.enter_graceful_shutdown()
        if self._server is None:
            return
        if self.settings.drain_s > 0:
            await asyncio.sleep(self.settings.drain_s)
        grace = self.settings.grace_s
        stopping = asyncio.ensure_future(
            asyncio.gather(self._server.stop(grace), *(companion.stop(grace) for companion in self._companions))
        )
        if self._interrupt is not None and grace > 0:
            done, _ = await asyncio.wait({stopping}, timeout=grace - min(1.0, grace / 2))
            if not done:
                log.warning("requests still running as the grace period ends: ending them with an explicit error")
                self._interrupt()
        await stopping
        log.info("%s stopped", self.service)


async def serve_until_signalled(server: GrpcServer, on_stop: Callable[[], Awaitable[None]] | None = None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await server.start()
    await stop.wait()
    await server.stop()
    if on_stop is not None:
        await on_stop()
    shutdown_tracing()


# How long a thread that wants the GIL waits before the one holding it must let go (Python's default: 5 ms).
# A service's other threads run Python too (the span exporter encoding a batch, gRPC's, SQLite's); each time
# the event loop comes back from a system call while one of them runs, it would wait up to that long. At
# 100 % tracing that is what made the tail: p99 at concurrency 1 fell by 0.6-1.3 ms with 1 ms, at the same CPU.
GIL_SWITCH_INTERVAL_S = 0.001


def run(main: Coroutine[Any, Any, None]) -> None:
    """Run a service's main coroutine on uvloop when it is installed."""
    sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    with contextlib.suppress(KeyboardInterrupt):
        uvloop.run(main)


def service_cli(
    service: str,
    settings: ServiceSettings,
    main: Callable[[Any], Coroutine[Any, Any, None]],
    config_errors: tuple[type[Exception], ...],
) -> None:
    """A service's `python -m` entry: its logs, `main(settings)` on the loop, exit 2 on a bad configuration."""
    configure_logging(service, settings.log_level, settings.log_format)
    try:
        run(main(settings))
    except config_errors as exc:
        logging.getLogger(service).error("invalid configuration: %s", exc)
        sys.exit(2)
