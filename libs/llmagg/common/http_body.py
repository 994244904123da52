"""An HTTP/1.1 answer's body as it arrives (llmagg.common.http_client): its framing (a content length,
chunks, or until the connection closes) and its content encoding (gzip, deflate), and the errors the
client raises."""

from __future__ import annotations

import zlib

from llmagg.common.http_chunks import ChunkError, Dechunker

_MAX_INFLATED = 64 * 1024 * 1024  # of one piece of a compressed body: more than any answer may be
_CHUNK_ERRORS = {
    "size": "malformed chunk size",
    "crlf": "malformed chunk: no CRLF after its data",
    "trailers": "the answer's trailers are too large",
}
CUT = "the connection closed before the response was complete"


class HttpError(Exception):
    """The exchange failed on the wire; the message never carries header values (keys live there)."""


class ConnectError(HttpError):
    def __init__(self, host: str, port: int, reason: str) -> None:
        super().__init__(f"cannot connect to {host}:{port}: {reason}")
        self.host, self.port = host, port


class ResponseError(HttpError):
    """The connection closed before the answer was complete, or the answer is malformed."""


class BodyTooLarge(HttpError):
    def __init__(self, limit: int) -> None:
        super().__init__(f"the answer is larger than {limit} bytes")
        self.limit = limit


class ResponseBody:
    """A response body's framing (content length, chunks, or until the connection closes) and encoding."""

    def __init__(self, length: int | None, chunked: bool, encoding: str) -> None:
        self.remaining = length  # of a content-length body
        self.chunked = chunked
        self.until_close = length is None and not chunked
        self.done = length == 0
        self._chunks = Dechunker(max_size_line=4096, strip_size=True) if chunked else None
        self._decoder = None
        if encoding in ("gzip", "x-gzip"):
            self._decoder = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif encoding == "deflate":
            self._decoder = zlib.decompressobj()
        elif encoding not in ("", "identity"):
            raise ResponseError("the answer's content-encoding is not supported")  # its value: the provider's words

    def feed(self, data: bytes | bytearray) -> tuple[bytes, bytes]:
        """(the body bytes in `data`, what comes after the body); ResponseError when malformed."""
        if self._chunks is not None:
            try:
                body, rest = self._chunks.feed(data)
            except ChunkError as error:
                raise ResponseError(_CHUNK_ERRORS[error.kind]) from None
            self.done = self._chunks.done
        elif self.until_close:
            body, rest = bytes(data), b""
        else:
            assert self.remaining is not None
            body, rest = bytes(data[: self.remaining]), bytes(data[self.remaining :])
            self.remaining -= len(body)
            self.done = self.remaining == 0
        return self._decode(body), rest

    def plain_bytes_left(self) -> int | None:
        """The bytes still to come, when a content length frames an unencoded body; None otherwise."""
        return self.remaining if self._decoder is None and not self.chunked else None

    def end(self) -> bytes:
        """The connection closed: the rest of an until-close body; ResponseError when the body is cut."""
        if not self.until_close and not self.done:
            raise ResponseError(CUT)
        self.done = True
        return self._decode(b"", final=True)

    def _decode(self, data: bytes, final: bool = False) -> bytes:
        if self._decoder is None:
            return data
        try:
            out = self._decoder.decompress(data, _MAX_INFLATED)
            if self._decoder.unconsumed_tail:  # a small piece that inflates past any answer: a bomb
                raise ResponseError(f"the answer's compressed body inflates beyond {_MAX_INFLATED} bytes")
            if final or self.done:
                out += self._decoder.flush()
        except zlib.error:
            raise ResponseError("the answer's compressed body is malformed") from None
        # The framing ended but the compressed stream did not: a shorter body, not the whole one.
        if (final or self.done) and not self._decoder.eof:
            raise ResponseError(CUT if final else "the answer's compressed body is incomplete")
        return out
