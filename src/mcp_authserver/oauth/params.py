"""Request parameters as OAuth reads them: each at most once (RFC 6749 §3.1), `resource` repeatable
(RFC 8707 §2). Endpoints parse a request into `Params`; services take them from there."""

from __future__ import annotations

from collections.abc import Iterator

from mcp_authserver.errors import InvalidRequestError

__all__ = ["Params"]


class Params:
    """Request parameters where each may appear once (RFC 6749 §3.1), except the named repeatable ones."""

    def __init__(self, pairs: list[tuple[str, str]], *, repeatable: frozenset[str] = frozenset({"resource"})) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)
        if duplicated := sorted(k for k, v in self._values.items() if len(v) > 1 and k not in repeatable):
            raise InvalidRequestError(f"parameters must not be repeated: {', '.join(duplicated)}")

    def get(self, name: str) -> str | None:
        values = self._values.get(name)
        return values[0] if values else None

    def require(self, name: str) -> str:
        value = self.get(name)
        if not value:
            raise InvalidRequestError(f"{name} is required")
        return value

    def all(self, name: str) -> list[str]:
        return self._values.get(name, [])

    def items(self) -> Iterator[tuple[str, str]]:
        """Every (name, value) pair, repeated parameters included."""
        for name, values in self._values.items():
            for value in values:
                yield name, value

    def __contains__(self, name: str) -> bool:
        return name in self._values
