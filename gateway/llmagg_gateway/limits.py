"""Size limits the gateway enforces (bodies over them get an OpenAI-shaped 413)."""

MAX_BODY_BYTES = 32 * 1024 * 1024
