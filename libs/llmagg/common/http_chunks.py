"""A chunked HTTP/1.1 body decoded as it arrives, for the data port's requests (http_server) and the
providers' answers (http_body): each chunk's data, then once the last chunk and its trailers came, the
bytes that follow the body."""

from __future__ import annotations

import re

MAX_HEAD_BYTES = 64 * 1024  # of an HTTP head (a request's or an answer's), and of a chunked body's trailers
_HEX = re.compile(rb"[0-9A-Fa-f]{1,15}")


class ChunkError(Exception):
    """The chunks are malformed or over a limit. `kind`: `size` (a size line that is not one),
    `crlf` (no CRLF after a chunk's data), `trailers` (over MAX_HEAD_BYTES), `too_large` (over max_body)."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Dechunker:
    """`max_size_line`: the longest size line waited for; `max_body`: the body's limit, refused as soon as a
    size line would take it past (no data to wait for); `strip_size`: whitespace around a size is allowed."""

    def __init__(self, *, max_size_line: int, max_body: int | None = None, strip_size: bool = False) -> None:
        self.done = False
        self._max_size_line = max_size_line
        self._max_body = max_body
        self._strip_size = strip_size
        self._declared = 0  # the sizes of the chunks begun so far
        self._chunk_left = 0  # of the chunk being read; -1: its CRLF, then the next size line
        self._pending = bytearray()  # a size line or a CRLF cut by the last read

    def feed(self, data: bytes | bytearray) -> tuple[bytes, bytes]:
        """(the chunks' data in `data`, what follows the body once it is done); ChunkError when malformed."""
        if self._pending:
            self._pending += data
            buffer: bytes | bytearray = bytes(self._pending)
        else:
            buffer = data
        pos, size_of_buffer, out = 0, len(buffer), []
        while not self.done:
            if self._chunk_left > 0:
                taken = min(self._chunk_left, size_of_buffer - pos)
                if taken:
                    out.append(buffer[pos : pos + taken])
                    pos += taken
                    self._chunk_left -= taken
                if self._chunk_left:
                    break
                self._chunk_left = -1
            if self._chunk_left == -1:
                if size_of_buffer - pos < 2:
                    break
                if not buffer.startswith(b"\r\n", pos):
                    raise ChunkError("crlf")
                pos += 2
                self._chunk_left = 0
            end = buffer.find(b"\r\n", pos)
            if end < 0:
                if size_of_buffer - pos > self._max_size_line:
                    raise ChunkError("size")
                break
            size_text = bytes(buffer[pos:end]).split(b";", 1)[0]
            if not _HEX.fullmatch(size_text.strip() if self._strip_size else size_text):
                raise ChunkError("size")
            size = int(size_text, 16)
            if size:
                if self._max_body is not None and self._declared + size > self._max_body:
                    raise ChunkError("too_large")
                self._declared += size
                pos, self._chunk_left = end + 2, size
                continue
            trailers_end = buffer.find(b"\r\n\r\n", end)  # "0\r\n\r\n" without trailers ends there too
            if trailers_end < 0:
                if size_of_buffer - pos > MAX_HEAD_BYTES:
                    raise ChunkError("trailers")
                break
            pos, self.done = trailers_end + 4, True
        body = b"".join(out)
        if self.done:
            self._pending = bytearray()
            return body, bytes(buffer[pos:])
        self._pending = bytearray(buffer[pos:])
        return body, b""
