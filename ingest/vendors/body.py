"""A VidiCenter answer read from a file: its top-level keys, and its rows a slice at a time.

An export's answer can be hundreds of megabytes. It is spooled to a temporary file as it
arrives, and its `data` array is then handed out as JSON arrays of whole rows of a few
megabytes each, so that decoding, normalizing and loading never need the whole body.

Where a row starts: every row of the vendor's `data` is an object whose first key is the
same (`location_id`, ...), and `{"` never occurs inside a JSON string (a quote in a string
is escaped). So the bytes from the first row's `{` to the end of its first key mark the
start of every row, and a slice cut before one holds whole rows. A slice whose brackets do
not balance (a string holding braces, a nested object with the same first key) is checked
by parsing it, and cut earlier if needed.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import AsyncIterable, Iterator, Mapping
from typing import Any, Protocol

import msgspec

from ingest.errors import BodyUnreadable

SMALL = 1 << 20  # answers up to this size are kept in memory and decoded whole
SLICE = 8 << 20  # bytes of rows handed out at a time
HEAD = 1 << 16  # bytes read to find the keys before `data`
MAX_ROW = 64 << 20  # a single row larger than this is not a row of this API
_WS = b" \t\r\n"
_OPEN, _CLOSE = ord("["), ord("]")
_TOP = msgspec.json.Decoder(dict[str, msgspec.Raw])
_RAW_LIST = msgspec.json.Decoder(list[msgspec.Raw])
_ANY = msgspec.json.Decoder()


class Spool(Protocol):
    """A file an answer is read from: a spooled temporary file, or bytes in memory."""

    def read(self, size: int = -1, /) -> bytes: ...
    def readinto(self, buffer: memoryview, /) -> int: ...
    def seek(self, offset: int, whence: int = 0, /) -> int: ...
    def close(self) -> None: ...


class ExportAnswer(Mapping[str, Any]):
    """An answer of the export endpoint: its keys (`state`, `creation_date`, ...) as a
    mapping, and the rows of `data` through `row_slices`. Close it to drop the file.

    `answer["data"]` reads the whole `data` array into memory, as `msgspec.Raw`: for small
    answers and tests; the loader uses `row_slices`.
    """

    def __init__(
        self, keys: dict[str, Any], file: Spool | None = None, data_at: int | None = None
    ) -> None:
        self._keys = keys
        self._file = file
        self._data_at = data_at  # offset of the `[` of `data` in the file

    @property
    def has_data(self) -> bool:
        return self._data_at is not None

    def __getitem__(self, key: str) -> Any:
        if key == "data" and self._data_at is not None:
            return msgspec.Raw(b"".join(self.row_slices(whole=True)))
        return self._keys[key]

    def __iter__(self) -> Iterator[str]:
        yield from self._keys
        if self._data_at is not None:
            yield "data"

    def __len__(self) -> int:
        return len(self._keys) + (self._data_at is not None)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()

    def __enter__(self) -> ExportAnswer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def row_slices(
        self, slice_bytes: int = SLICE, *, whole: bool = False
    ) -> Iterator[bytes | bytearray]:
        """The rows of `data`, as JSON arrays of whole rows of about `slice_bytes` each (one
        array with every row if `whole`). BodyUnreadable if the array is cut short."""
        if self._file is None or self._data_at is None:
            return
        self._file.seek(self._data_at + 1)  # past the `[`
        if whole:
            yield b"[" + _last_rows(self._file.read())[0] + b"]"
            return
        yield from _slices(self._file, slice_bytes)

    @property
    def state(self) -> Any:
        """The export's state: the docs call the key `state` and, once, `status`."""
        return self._keys.get("state", self._keys.get("status"))


async def spool(chunks: AsyncIterable[bytes]) -> ExportAnswer:
    """Read a body to a temporary file (kept in memory while small), then open it."""
    file = tempfile.SpooledTemporaryFile(max_size=SMALL)  # noqa: SIM115
    try:
        async for chunk in chunks:
            file.write(chunk)
        file.seek(0)
        return open_answer(file)
    except BaseException:
        file.close()
        raise


def open_answer(file: Spool) -> ExportAnswer:
    """The answer held in `file` (read from its start): small ones are decoded whole; of a
    large one, only the keys before `data` are read now. BodyUnreadable if it is not JSON."""
    size = file.seek(0, os.SEEK_END)
    file.seek(0)
    if size <= SMALL:
        body = file.read()
        file.close()
        return from_bytes(body)
    head = file.read(HEAD)
    found = _data_in_head(head)
    if found is None or not ({"state", "status"} & set(found[0])):
        # an unusual layout: read it whole, which is slower and holds it in memory
        file.seek(0)
        body = file.read()
        file.close()
        return from_bytes(body)
    keys, data_at = found
    file.seek(max(data_at, size - HEAD))
    if not _ends_whole(file.read()):
        file.close()
        raise BodyUnreadable("the export's answer is cut short: it does not end as JSON does")
    return ExportAnswer(keys, file, data_at)


def from_bytes(body: bytes) -> ExportAnswer:
    """An answer decoded from bytes in memory; BodyUnreadable if it is not a JSON object."""
    try:
        top = _TOP.decode(body)
        keys = {k: _ANY.decode(v) for k, v in top.items() if k != "data"}
    except msgspec.ValidationError:
        raise BodyUnreadable("vidicenter answered JSON that is not an object") from None
    except msgspec.DecodeError as error:
        raise BodyUnreadable(f"vidicenter answered a body that is not JSON ({error})") from None
    if "data" not in top:
        return ExportAnswer(keys)
    data = bytes(top["data"])
    if not data.startswith(b"["):
        # not a list: the normalizer says what it is
        return ExportAnswer(keys | {"data": _ANY.decode(data)})
    # as in a body on file, the array is followed by the end of its object
    return ExportAnswer(keys, io.BytesIO(data + b"}"), 0)


def _data_in_head(head: bytes) -> tuple[dict[str, Any], int] | None:
    """The keys before `data` and the offset of its `[`, or None if not in `head`."""
    at = head.find(b'"data"')
    while at >= 0:
        try:
            keys = _ANY.decode(head[:at] + b'"data":0}')
        except msgspec.DecodeError:
            keys = None
        if isinstance(keys, dict):
            rest = head[at + 6 :].lstrip(_WS)
            if rest.startswith(b":") and rest[1:].lstrip(_WS).startswith(b"["):
                colon = len(head) - len(rest)
                value = rest[1:]
                bracket = colon + 1 + (len(value) - len(value.lstrip(_WS)))
                del keys["data"]
                return keys, bracket
            return None
        at = head.find(b'"data"', at + 1)
    return None


def _ends_whole(end: bytes) -> bool:
    """Whether the last bytes of a body can be the end of `data` and of the object (when they
    hold no `]`, only the reading of the rows will tell)."""
    if not end.rstrip(_WS).endswith(b"}"):
        return False
    at = end.rfind(b"]")
    if at < 0:
        return True
    while at >= 0:
        try:
            _TOP.decode(b'{"data":0' + end[at + 1 :])
        except msgspec.DecodeError:
            at = end.rfind(b"]", 0, at)
            continue
        return True
    return False


def _slices(file: Spool, slice_bytes: int) -> Iterator[bytes | bytearray]:
    rest = b""
    marker: bytes | None = None
    while True:
        # `[`, the start of a row left over, then a block read straight in after it: the
        # slice is made in place, without copying its rows again
        lead = 1 + len(rest)
        buf = bytearray(lead + slice_bytes)
        buf[0] = _OPEN
        buf[1:lead] = rest
        got = file.readinto(memoryview(buf)[lead:])
        if not got:
            break
        del buf[lead + got :]
        if marker is None:
            marker = _row_marker(buf, 1)
            if marker is None:
                if len(buf) > MAX_ROW:
                    raise BodyUnreadable("the export's data: no row found in its first bytes")
                rest = bytes(memoryview(buf)[1:])
                continue
        cut = _cut(buf, 1, marker)
        if cut is None:
            if len(buf) > MAX_ROW:
                raise BodyUnreadable("the export's data: a row larger than any of this API")
            rest = bytes(memoryview(buf)[1:])
            continue
        end, start = cut
        rest = bytes(memoryview(buf)[start:])
        buf[end] = _CLOSE  # the comma after the last whole row
        del buf[end + 1 :]
        yield buf
    rows, _tail = _last_rows(rest)
    if rows.strip(_WS):
        yield b"[" + rows + b"]"


def _row_marker(buf: bytes | bytearray, first: int) -> bytes | None:
    """The bytes every row starts with: its `{` up to the end of its first key (the first
    row starts at `first`, after whitespace)."""
    start = first
    while start < len(buf) and buf[start] in _WS:
        start += 1
    if buf[start : start + 1] != b"{":
        return None
    quote = buf.find(b'"', start)
    end = buf.find(b'"', quote + 1)
    if quote < 0 or end < 0 or buf[start + 1 : quote].strip(_WS):
        return None
    return bytes(buf[start : end + 1])


def _cut(buf: bytes | bytearray, first: int, marker: bytes) -> tuple[int, int] | None:
    """Where the whole rows of `buf` (from `first` on) end, at the comma after them, and
    where the last row that starts in `buf` starts; None when `buf` holds no whole row."""
    end = len(buf)
    for _ in range(16):
        at = buf.rfind(marker, first + 1, end)
        if at < 0:
            return None
        comma = at - 1
        while comma > first and buf[comma] in _WS:
            comma -= 1
        if buf[comma] == ord(",") and _whole(buf, first, comma):
            return comma, at
        end = at
    return None


def _whole(buf: bytes | bytearray, first: int, end: int) -> bool:
    """Whether `buf[first:end]` is whole rows, `end` being the comma before a row marker.

    Outside an array, a comma is followed by a key, never by `{`: so without a `[` there
    is no array for the comma to be inside of, and the cut is between two rows (one
    memchr, where counting braces reads every byte). With one, a cut inside a row leaves
    its braces unbalanced (braces inside strings may unbalance them too: then a parse
    decides).
    """
    if buf.find(b"[", first, end) < 0:
        return True
    if buf.count(b"{", first, end) == buf.count(b"}", first, end):
        return True
    try:
        _RAW_LIST.decode(b"[" + buf[first:end] + b"]")
    except msgspec.DecodeError:
        return False
    return True


def _last_rows(buf: bytes) -> tuple[bytes, bytes]:
    """The rows before the `]` that closes `data`, and what follows it (the rest of the
    top-level object). The last `]` that leaves both parts whole is the one."""
    at = buf.rfind(b"]")
    while at >= 0:
        rows, tail = buf[:at], buf[at + 1 :]
        try:
            _TOP.decode(b'{"data":0' + tail)
            _RAW_LIST.decode(b"[" + rows + b"]")
        except msgspec.DecodeError:
            at = buf.rfind(b"]", 0, at)
            continue
        return rows, tail
    raise BodyUnreadable("the export's answer is cut short: its data does not end")
