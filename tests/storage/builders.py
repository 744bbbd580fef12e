"""Records for the storage contract tests, with every field set away from its default."""

from __future__ import annotations

import dataclasses
import secrets

from mcp_authserver.storage import (
    AuthorizationCodeRecord,
    AuthorizationRequest,
    ClientRecord,
    ConsentTicket,
    DCRResolution,
    GrantRecord,
    PendingLogin,
    Storage,
    UpstreamTokens,
)

DAY = 86_400.0
LONG_TTL = 30 * DAY
"""A TTL no contract test outside the expiry module comes near, so those tests hold with real server-side TTLs."""


def new_hash() -> str:
    """A fresh credential hash (the SHA-256 hex form storage keys credentials by)."""
    return secrets.token_hex(32)


def new_id() -> str:
    return secrets.token_urlsafe(16)


def assert_same_record(got: object, expected: object) -> None:
    """Equal in every field, nested records and container types included (`==` skips `compare=False` fields)."""
    assert dataclasses.is_dataclass(got)
    assert dataclasses.is_dataclass(expected)
    assert type(got) is type(expected)
    assert dataclasses.asdict(got) == dataclasses.asdict(expected)  # type: ignore[arg-type]


def client(client_id: str | None = None) -> ClientRecord:
    return ClientRecord(
        client_id=client_id or new_id(),
        redirect_uris=("https://app.example/callback", "http://127.0.0.1:8765/cb"),
        token_endpoint_auth_method="client_secret_post",
        grant_types=("authorization_code",),
        response_types=("code", "none"),
        client_secret_hash=new_hash(),
        client_name="Example App ✓",
        scope="read write",
        client_id_issued_at=1_700_000_000,
        client_secret_expires_at=1_900_000_000,
        metadata={
            "client_uri": "https://app.example",
            "contacts": ["ops@app.example", "dev@app.example"],
            "software_id": "example-app",
            "extra": {"nested": [1, 2.5, True, None, "x"]},
        },
        static=True,
    )


def authorization_request() -> AuthorizationRequest:
    return AuthorizationRequest(
        client_id=new_id(),
        redirect_uri="https://app.example/callback",
        redirect_uri_provided=True,
        code_challenge=secrets.token_urlsafe(32),
        scopes=("read", "write"),
        resource="https://mcp.example/mcp",
        state="state-xyz",
    )


def consent_ticket() -> ConsentTicket:
    return ConsentTicket(request=authorization_request(), browser_hash=new_hash())


def pending_login() -> PendingLogin:
    return PendingLogin(
        request=authorization_request(),
        browser_hash=new_hash(),
        code_verifier=secrets.token_urlsafe(48),
        nonce=secrets.token_urlsafe(16),
    )


def code(now: float) -> AuthorizationCodeRecord:
    return AuthorizationCodeRecord(request=authorization_request(), subject="user-1", grant_id=new_id(), issued_at=now)


def grant(now: float, *, lifetime: float = 90 * DAY, grant_id: str | None = None) -> GrantRecord:
    return GrantRecord(
        grant_id=grant_id or new_id(),
        client_id=new_id(),
        subject="user-1",
        scopes=("read", "write"),
        resource="https://mcp.example/mcp",
        created_at=now,
        expires_at=now + lifetime,
    )


def upstream_tokens(now: float) -> UpstreamTokens:
    return UpstreamTokens(
        access_token=secrets.token_urlsafe(32),
        token_type="DPoP",
        refresh_token=secrets.token_urlsafe(32),
        expires_at=now + 3600.5,
        scope="openid profile",
        subject="upstream-user-1",
        issued_at=now,
    )


def dcr_resolution(now: float) -> DCRResolution:
    return DCRResolution(
        client_id=new_id(),
        redirect_uri="https://mcp.example/oauth/callback",
        authorization_endpoint="https://idp.example/authorize",
        token_endpoint="https://idp.example/token",
        token_endpoint_auth_method="client_secret_basic",
        client_secret=secrets.token_urlsafe(32),
        registration_access_token=secrets.token_urlsafe(32),
        registration_client_uri="https://idp.example/register/abc",
        client_id_issued_at=1_700_000_000,
        client_secret_expires_at=1_900_000_000,
        created_at=now,
    )


async def open_grant(
    storage: Storage,
    now: float,
    refresh_hash: str | None,
    *,
    ttl: float = LONG_TTL,
    lifetime: float = 90 * DAY,
    upstream: UpstreamTokens | None = None,
) -> GrantRecord:
    """A login as the server opens one: a code at the callback, then its redemption with the first refresh token."""
    record, code_hash = code(now), new_hash()
    opened = grant(now, lifetime=lifetime, grant_id=record.grant_id)
    await storage.put_code(code_hash, record, upstream or upstream_tokens(now), ttl=LONG_TTL)
    redemption = await storage.redeem_code(opened.grant_id, code_hash, opened, refresh_hash, attempt=new_id(), ttl=ttl)
    assert redemption == "redeemed"
    return opened


def sealed(token_hash: str) -> str:
    """Stands for the sealed successor the grant service stores with a rotation (opaque to storage)."""
    return "sealed-" + token_hash
