"""The bounds the gateway holds: over them a request gets an OpenAI-shaped 408/413/431/503, never a crash."""

# Bodies of transcoded JSON routes are buffered whole up to this; chat and embeddings bodies stream
# through in pieces instead (the router bounds them), so a connection holds at most its buffer.
MAX_BODY_BYTES = 32 * 1024 * 1024
CONNECTION_BUFFER_BYTES = 1024 * 1024
# Request headers larger than this get a 431; the services accept more, so nothing in between fails.
MAX_REQUEST_HEADERS_KB = 64
# The whole request must arrive within this (a stalled upload stops holding its buffer), its headers sooner.
REQUEST_TIMEOUT = "120s"
REQUEST_HEADERS_TIMEOUT = "10s"
MAX_CONCURRENT_STREAMS = 128  # per HTTP/2 connection
MAX_DOWNSTREAM_CONNECTIONS = 4096
# Envoy's heap: above 90% it releases free memory, from 85% it resets the streams holding the most
# buffered bytes, above 95% it answers new requests with 503.
DEFAULT_MAX_HEAP_BYTES = 1024 * 1024 * 1024
