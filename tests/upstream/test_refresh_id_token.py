"""An ID token in an upstream refresh answer is validated like the login's and must name the same user.

The real mock upstream sends no ID token on refresh, so a scripted IdP answers instead.
"""

from __future__ import annotations

from typing import Any

import pytest

from mcp_authserver.errors import UpstreamRefreshError
from mcp_authserver.storage import InMemoryStorage, UpstreamTokens
from mcp_authserver.testing import FakeClock
from mcp_authserver.tokens.keys import KeyProvider, SigningKey
from mcp_authserver.upstream.refresher import UpstreamTokenRefresher
from tests.storage import builders
from tests.upstream.scripted_idp import ScriptedIdP, scripted_provider

pytestmark = pytest.mark.anyio


def _answer(idp: ScriptedIdP, **claims: Any) -> dict[str, Any]:
    """A refresh answer whose ID token carries no nonce (OIDC Core §12.2) unless told."""
    return {"access_token": "at-2", "refresh_token": "rt-2", "expires_in": 600, "id_token": idp.id_token(**claims)}


async def test_a_refreshed_id_token_for_the_same_user_without_nonce_is_accepted() -> None:
    idp = ScriptedIdP()
    idp.token_body = _answer(idp, nonce=None)
    tokens = await scripted_provider(idp).refresh("rt-1", subject="user-1")
    assert (tokens.access_token, tokens.refresh_token) == ("at-2", "rt-2")


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"sub": "user-2"}, id="another-user"),
        pytest.param({"iss": "https://evil.example"}, id="another-issuer"),
        pytest.param({"aud": "someone-else"}, id="another-audience"),
        pytest.param({"azp": "someone-else"}, id="another-azp"),
        pytest.param({"exp": 1_000_000_000}, id="expired"),
        pytest.param({"iat": None}, id="no-iat"),
    ],
)
async def test_a_refreshed_id_token_that_fails_a_check_ends_the_login(claims: dict[str, Any]) -> None:
    idp = ScriptedIdP()
    idp.token_body = _answer(idp, nonce=None, **claims)
    with pytest.raises(UpstreamRefreshError):
        await scripted_provider(idp).refresh("rt-1", subject="user-1")


async def test_a_refreshed_id_token_signed_by_an_unpublished_key_ends_the_login() -> None:
    idp = ScriptedIdP()
    idp.signing_key = SigningKey.generate("RS256")
    idp.token_body = _answer(idp, nonce=None)
    with pytest.raises(UpstreamRefreshError):
        await scripted_provider(idp).refresh("rt-1", subject="user-1")


async def test_the_subject_claim_compared_is_the_configured_one() -> None:
    idp = ScriptedIdP()
    idp.token_body = _answer(idp, nonce=None, oid="object-1", sub="pairwise-sub-changes")
    provider = scripted_provider(idp, subject_claim="oid")
    assert (await provider.refresh("rt-1", subject="object-1")).access_token == "at-2"
    idp.token_body = _answer(idp, nonce=None, oid="object-2")
    with pytest.raises(UpstreamRefreshError):
        await provider.refresh("rt-1", subject="object-1")


async def test_a_refresh_naming_another_user_revokes_the_grant_and_keeps_nothing_it_sent() -> None:
    idp = ScriptedIdP()
    idp.token_body = _answer(idp, nonce=None, sub="mallory")
    clock = idp.clock
    storage = InMemoryStorage(clock=clock)
    ends = _login_ends(storage, clock)
    refresher = UpstreamTokenRefresher(storage, scripted_provider(idp), end_login=ends, margin=60, clock=clock)
    expiring = UpstreamTokens(access_token="at-1", refresh_token="rt-1", expires_at=clock.now + 5, subject="user-1")
    grant = await builders.open_grant(storage, clock.now, None, upstream=expiring)

    with pytest.raises(UpstreamRefreshError):
        await refresher.fresh_tokens(grant.grant_id)
    assert await storage.is_revoked(grant.grant_id, generation=0, issued_at=clock.now)
    assert await storage.get_upstream_tokens(grant.grant_id) is None


def _login_ends(storage: InMemoryStorage, clock: FakeClock) -> Any:
    """How the server ends a login: the revocation service, over the test's storage."""
    from mcp_authserver.services.revocation import RevocationService
    from mcp_authserver.tokens.access import AccessTokenVerifier

    verifier = AccessTokenVerifier(KeyProvider.ephemeral(), issuer="https://as", audience="https://as/mcp")
    return RevocationService(storage, verifier, revocation_ttl=3630, leeway=30, clock=clock).end_login
