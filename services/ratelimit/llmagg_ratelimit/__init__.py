"""The ratelimit service (llmagg.ratelimit.v1.RatelimitService and Envoy's RateLimitService)."""
