"""How commands and events cross the worker link: framed JSON, checked against their dataclasses (pure).

Each message is a JSON object preceded by its length (4 bytes, big endian),
at most MAX_MESSAGE bytes. A command goes as ``{"type": KIND, "id": N,
...fields}`` (decoded to a :class:`~.commands.Request`), an event as
``{"type": KIND, ...fields}``. Decoding checks every field against the
dataclass's annotations (types, required fields, no unknown field, no
unknown type) and raises :class:`MessageError` saying what is wrong; the same
messages serve a worker thread and a worker process.

May import: .commands, .events, orjson and the standard library (pure; no trio, asyncio or aiortc).
"""

from __future__ import annotations

import dataclasses
import struct
import types
import typing
from functools import cache
from typing import Any, Union

import orjson

from .commands import COMMANDS, Request
from .events import EVENTS

MAX_MESSAGE = 4 * 1024 * 1024  # bytes of one message; an answer SDP for a full room is ~50 KB
_LENGTH = struct.Struct(">I")
_KINDS: dict[str, type] = {cls.kind: cls for cls in (*COMMANDS, *EVENTS)}
_COMMANDS = frozenset(COMMANDS)


class MessageError(Exception):
    """Bytes that are not a message of this protocol; the text says what is wrong."""


def encode(message: Any) -> bytes:
    """One framed message: a :class:`~.commands.Request` or an event; raises MessageError when too long."""
    if isinstance(message, Request):
        body = orjson.dumps({"type": message.command.kind, "id": message.id, **_fields(message.command)})
    else:
        body = orjson.dumps({"type": message.kind, **_fields(message)})
    if len(body) > MAX_MESSAGE:
        raise MessageError(f"a message of {len(body)} bytes; at most {MAX_MESSAGE}")
    return _LENGTH.pack(len(body)) + body


def _fields(message: Any) -> dict[str, Any]:
    # orjson writes nested dataclasses and tuples itself; only the top level is spread here.
    return {f.name: getattr(message, f.name) for f in dataclasses.fields(message)}


def decode(body: bytes) -> Any:
    """The message in ``body`` (one frame's content): a Request or an event; raises MessageError."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise MessageError(f"not JSON: {error.msg}") from None
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise MessageError("a message is an object with a type")
    kind = value.pop("type")
    cls = _KINDS.get(kind)
    if cls is None:
        raise MessageError(f"unknown message type {kind[:40]!r}")
    if cls in _COMMANDS:
        request_id = value.pop("id", None)
        if not isinstance(request_id, int) or isinstance(request_id, bool):
            raise MessageError(f"{kind}: id is missing or not an integer")
        return Request(request_id, _build(cls, value, kind))
    return _build(cls, value, kind)


def as_type(value: Any, hint: Any, where: str = "value") -> Any:
    """``value`` (decoded JSON) as ``hint`` says: lists become tuples, objects dataclasses;
    raises MessageError naming ``where`` when it does not fit."""
    if hint is None or hint is type(None):
        if value is not None:
            raise MessageError(f"{where} must be null")
        return None
    if hint is Any or hint is object:
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise MessageError(f"{where} must be an object")
        return _build(hint, dict(value), where)
    origin = typing.get_origin(hint)
    if origin in (Union, types.UnionType):
        options = [a for a in typing.get_args(hint) if a is not type(None)]
        if value is None and len(options) < len(typing.get_args(hint)):
            return None
        if len(options) == 1:
            return as_type(value, options[0], where)  # its own error says what was expected
        for option in options:
            try:
                return as_type(value, option, where)
            except MessageError:
                continue
        raise MessageError(f"{where} is of the wrong type")
    if origin is tuple:
        return _tuple(value, typing.get_args(hint), where)
    if origin is dict:
        _, item = typing.get_args(hint)
        if not isinstance(value, dict):
            raise MessageError(f"{where} must be an object")
        return {key: as_type(v, item, f"{where}[{key[:40]!r}]") for key, v in value.items()}
    return _scalar(value, hint, where)


def _scalar(value: Any, hint: type, where: str) -> Any:
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise MessageError(f"{where} must be {hint.__name__}, not {type(value).__name__}")
    return value


def _tuple(value: Any, args: tuple, where: str) -> tuple:
    if not isinstance(value, list):
        raise MessageError(f"{where} must be a list")
    if len(args) == 2 and args[1] is Ellipsis:
        return tuple(as_type(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
    if len(value) != len(args):
        raise MessageError(f"{where} must have {len(args)} items")
    return tuple(as_type(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))


@cache
def _hints(cls: type) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The fields of ``cls`` with their types, and those it needs (no default)."""
    hints = typing.get_type_hints(cls)
    fields = dataclasses.fields(cls)
    required = tuple(f.name for f in fields
                     if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING)
    return {f.name: hints[f.name] for f in fields}, required


def _build(cls: type, value: dict[str, Any], where: str) -> Any:
    hints, required = _hints(cls)
    for name in value:
        if name not in hints:
            raise MessageError(f"{where}: unknown field {name[:40]!r}")
    for name in required:
        if name not in value:
            raise MessageError(f"{where}: {name} is missing")
    return cls(**{name: as_type(v, hints[name], f"{where}: {name}") for name, v in value.items()})


class Decoder:
    """Cuts a byte stream into messages; feed it what arrives, take what is complete."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def feed(self, data: bytes) -> list[Any]:
        """The messages completed by ``data``; raises MessageError on a frame that cannot be one."""
        self.buffer += data
        out = []
        while len(self.buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self.buffer)
            if length > MAX_MESSAGE:
                raise MessageError(f"a message of {length} bytes; at most {MAX_MESSAGE}")
            if len(self.buffer) < _LENGTH.size + length:
                break
            body = bytes(self.buffer[_LENGTH.size:_LENGTH.size + length])
            del self.buffer[:_LENGTH.size + length]
            out.append(decode(body))
        return out
