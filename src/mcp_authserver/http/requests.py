"""Reading request bodies and parameters, with limits, into plain values."""

from __future__ import annotations

import codecs
import json
import re
from typing import Any
from urllib.parse import parse_qsl

from starlette.requests import Request

from mcp_authserver.errors import InvalidRequestError, RequestTooLargeError
from mcp_authserver.oauth.params import Params

MAX_BODY = 64 * 1024
MAX_JSON_DEPTH = 16
_MAX_FIELDS = 100
_FORM_CODECS = frozenset({"utf-8", "ascii", "iso8859-1"})
# Escapes are removed first, so strings are then `"[^"]*"`: both passes are linear, whatever the input.
_JSON_ESCAPE = re.compile(rb"\\.", re.DOTALL)
_JSON_STRING = re.compile(rb'"[^"]*"')
_OPENING = frozenset(b"[{")
_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")


async def read_body(request: Request, limit: int = MAX_BODY) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise RequestTooLargeError(f"the request body must be at most {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestTooLargeError(f"the request body must be at most {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def read_form(request: Request, *, limit: int = MAX_BODY) -> Params:
    """An `application/x-www-form-urlencoded` body (RFC 6749 appendix B: UTF-8)."""
    media_type, _, parameters = request.headers.get("content-type", "").partition(";")
    if media_type.strip().lower() != "application/x-www-form-urlencoded":
        raise InvalidRequestError("the body must be application/x-www-form-urlencoded")
    encoding = _form_encoding(parameters)
    body = await read_body(request, limit)
    try:
        pairs = parse_qsl(
            body.decode(encoding),
            keep_blank_values=True,
            strict_parsing=False,
            max_num_fields=_MAX_FIELDS,
            encoding=encoding,
            errors="strict",
        )
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequestError("the form body is malformed") from None
    return Params(pairs)


def _form_encoding(parameters: str) -> str:
    """The codec for the `charset` a form declares: UTF-8 (RFC 6749 appendix B), or US-ASCII and
    ISO-8859-1, which some HTTP libraries declare by default. Anything else cannot be read as meant."""
    for parameter in parameters.split(";"):
        name, _, value = parameter.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"').lower()
            try:
                codec = codecs.lookup(charset).name
            except (LookupError, ValueError):  # ValueError: a NUL or surrogate in the name
                codec = ""
            if codec not in _FORM_CODECS:
                raise InvalidRequestError("the form body's charset must be UTF-8")
            return codec
    return "utf-8"


async def read_json(request: Request, *, limit: int = MAX_BODY, max_depth: int = MAX_JSON_DEPTH) -> Any:
    """An `application/json` body, any JSON value; the caller checks its shape.

    Nesting is bounded before parsing: Python's parser recurses, so `[[[[…` a thousand deep would
    otherwise end in a RecursionError (a 500), and where that happens depends on the stack in use.
    """
    media_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise InvalidRequestError("the body must be application/json")
    body = await read_body(request, limit)
    if json_depth(body) > max_depth:
        raise InvalidRequestError(f"the JSON body nests deeper than {max_depth} levels")
    try:
        return json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise InvalidRequestError("the body is not valid JSON") from None


def json_depth(body: bytes) -> int:
    """How deep arrays and objects nest in a JSON text (brackets inside strings do not count)."""
    structure = _JSON_STRING.sub(b"", _JSON_ESCAPE.sub(b"", body)).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in structure:
        if byte in _OPENING:
            depth += 1
            deepest = max(deepest, depth)
        else:
            depth -= 1
    return deepest


def query_params(request: Request) -> Params:
    try:
        pairs = parse_qsl(request.url.query, keep_blank_values=True, max_num_fields=_MAX_FIELDS)
    except ValueError:
        raise InvalidRequestError("too many query parameters") from None
    return Params(pairs)
