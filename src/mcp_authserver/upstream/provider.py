"""A login at the upstream IdP: the authorization URL, the code exchange and who logged in, refreshes
and revocation of the user's tokens there.

Built on the upstream's metadata (`discovery.py`), this server's client there (`token_client.py`, the
one place for client authentication), its signing keys (`jwks.py`) and the ID-token rules
(`oauth/oidc.py`). Every failure to reach the IdP becomes an `UpstreamError`; every refusal by the IdP
of a user's login becomes `AccessDeniedError`.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

import httpx

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver.errors import AccessDeniedError, UpstreamError, UpstreamRefreshError
from mcp_authserver.oauth.oidc import check_audience_and_nonce, signing_algorithm, subject_of, verified_claims
from mcp_authserver.oauth.rfc6749 import add_query
from mcp_authserver.observability.metrics import Metrics, UpstreamEndpoint
from mcp_authserver.storage.records import UpstreamTokens
from mcp_authserver.upstream.calls import UpstreamCalls
from mcp_authserver.upstream.config import UpstreamConfig
from mcp_authserver.upstream.discovery import UpstreamDiscovery, UpstreamMetadata
from mcp_authserver.upstream.jwks import UpstreamKeySet
from mcp_authserver.upstream.registration import UpstreamRegistrar
from mcp_authserver.upstream.sanitize import clean_error, is_auth_scheme, is_header_token, json_object
from mcp_authserver.upstream.token_client import RefusedError, UpstreamClient, UpstreamTokenClient

__all__ = ["UpstreamClient", "UpstreamIdentity", "UpstreamMetadata", "UpstreamProvider"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpstreamIdentity:
    """Who logged in at the upstream, and the tokens the upstream gave us for them."""

    subject: str
    claims: dict[str, Any]
    tokens: UpstreamTokens


class UpstreamProvider:
    def __init__(
        self,
        config: UpstreamConfig,
        *,
        http: httpx.AsyncClient,
        redirect_uri: str,
        clock: Clock = system_clock,
        registrar: UpstreamRegistrar | None = None,
        upstream_clock: Clock = system_clock,
        metrics: Metrics | None = None,
    ) -> None:
        """`upstream_clock` judges the times the upstream writes into its ID tokens (exp, iat, nbf). They
        are stamped on the upstream's own clock seconds before we read them, so a server takes the wall
        clock here even when its own `clock` is a test's fake one that has moved days ahead; a test with a
        scripted upstream gives both the same fake clock."""
        self._config = config
        self._calls = UpstreamCalls(http, metrics)
        self.redirect_uri = redirect_uri
        self._clock = clock
        self._upstream_clock = upstream_clock
        self.discovery = UpstreamDiscovery(config, self._get, clock=clock)
        self.token_client = UpstreamTokenClient(config, self.discovery, self._calls, registrar=registrar)
        self._keys = UpstreamKeySet(self._jwks_document, clock=clock)

    async def client(self) -> UpstreamClient:
        """Our client credentials at the upstream: configured, or obtained by dynamic registration."""
        return await self.token_client.credentials()

    async def metadata(self) -> UpstreamMetadata:
        return await self.discovery.metadata()

    async def response_issuer(self) -> tuple[str | None, bool]:
        """The upstream's issuer, and whether its metadata promises `iss` on authorization responses
        (RFC 9207 §3): what the callback checks the response against."""
        metadata = await self.metadata()
        return metadata.issuer, metadata.iss_parameter_supported

    async def authorization_url(self, *, state: str, code_challenge: str, nonce: str) -> str:
        metadata = await self.metadata()
        params: dict[str, str | None] = {
            **self._config.extra_authorize_params,
            "response_type": "code",
            "client_id": (await self.client()).client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self._config.scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "nonce": nonce if self._config.is_oidc else None,
        }
        return add_query(metadata.authorization_endpoint, params)

    async def exchange_code(self, *, code: str, code_verifier: str, nonce: str) -> UpstreamIdentity:
        """Redeem the upstream's code (RFC 6749 §4.1.3 with PKCE) and establish who logged in."""
        metadata = await self.metadata()
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "code_verifier": code_verifier,
        }
        try:
            body = await self.token_client.token(form)
        except RefusedError as refused:
            raise AccessDeniedError(f"the identity provider refused the request ({refused.error})") from None
        tokens = _tokens(body, self._clock())
        id_token = body.get("id_token")
        if self._config.is_oidc:
            if not isinstance(id_token, str):
                raise AccessDeniedError("the identity provider returned no ID token")
            claims = await self._validate_id_token(
                id_token, metadata, nonce=nonce, client_id=(await self.client()).client_id
            )
        else:
            claims = await self._userinfo(metadata, tokens.access_token)
        subject = subject_of(claims, self._config.subject_claim)
        if subject is None:
            raise AccessDeniedError(f"the identity provider did not say who logged in ({self._config.subject_claim})")
        return UpstreamIdentity(subject=subject, claims=claims, tokens=_with_subject(tokens, subject))

    async def refresh(self, refresh_token: str, *, subject: str | None = None) -> UpstreamTokens:
        """RFC 6749 §6.

        Only `invalid_grant` (RFC 6749 §5.2: the refresh token is invalid, expired or revoked)
        raises UpstreamRefreshError, which ends the login. Any other failure, `invalid_client`
        and rate limits included, is the upstream's bad day or our configuration, not the user's
        refusal: UpstreamError, a 503, and the login is kept for when it passes.

        An ID token in the answer is validated like the login's (but without nonce) and must name
        `subject`, the user of the login (OIDC Core §12.2); if not, UpstreamRefreshError.
        """
        metadata = await self.metadata()
        try:
            body = await self.token_client.token({"grant_type": "refresh_token", "refresh_token": refresh_token})
        except RefusedError as refused:
            if refused.error == "invalid_grant":
                raise UpstreamRefreshError("the identity provider refused the refresh token (invalid_grant)") from None
            logger.warning(
                "the upstream refused a refresh with %s; the login is kept",
                refused.error,
                extra={"event": "upstream.refresh_failed"},
            )
            raise UpstreamError(f"the upstream refused a refresh ({refused.error})") from None
        tokens = _tokens(body, self._clock())
        if self._config.is_oidc and "id_token" in body:
            await self._check_refreshed_id_token(body["id_token"], metadata, subject)
        if tokens.refresh_token is None:  # RFC 6749 §6: the old one stays valid when none is issued
            tokens = UpstreamTokens(**{**_fields(tokens), "refresh_token": refresh_token})
        return tokens

    async def revoke(self, tokens: UpstreamTokens) -> bool:
        """RFC 7009 §2.1: revoke the user's refresh token at the upstream (which, §2.1 says, should
        revoke the access tokens issued with it), or the access token when there is none.

        False when the upstream has no revocation endpoint; UpstreamError when it did not answer 200
        (RFC 7009 §2.2: 200 also for a token that is already invalid).
        """
        metadata = await self.metadata()
        if metadata.revocation_endpoint is None:
            return False
        if tokens.refresh_token is not None:
            form = {"token": tokens.refresh_token, "token_type_hint": "refresh_token"}
        else:
            form = {"token": tokens.access_token, "token_type_hint": "access_token"}
        response = await self.token_client.post(metadata.revocation_endpoint, form, "revocation")
        if response.status_code != 200:
            error = ""
            with contextlib.suppress(UpstreamError):
                error = clean_error(json_object(response, "revocation response").get("error", ""))
            raise UpstreamError(f"the upstream revocation endpoint answered {response.status_code} {error}".rstrip())
        return True

    async def _check_refreshed_id_token(self, id_token: Any, metadata: UpstreamMetadata, subject: str | None) -> None:
        """OIDC Core §12.2: iss, sub, aud, azp as in the first ID token; signature and times as always."""
        if not isinstance(id_token, str):
            raise UpstreamRefreshError("the identity provider's refreshed ID token is malformed")
        client_id = (await self.client()).client_id
        try:
            claims = await self._validate_id_token(id_token, metadata, nonce=None, client_id=client_id)
        except AccessDeniedError as exc:
            raise UpstreamRefreshError(f"the refreshed ID token did not validate: {exc.description}") from None
        if subject is not None and subject_of(claims, self._config.subject_claim) != subject:
            logger.warning(
                "the upstream refreshed a login for another user", extra={"event": "upstream.id_token_subject_changed"}
            )
            raise UpstreamRefreshError("the refreshed ID token names another user")

    async def _validate_id_token(
        self, id_token: str, metadata: UpstreamMetadata, *, nonce: str | None, client_id: str
    ) -> dict[str, Any]:
        """OIDC Core §3.1.3.7 with the upstream's keys: `nonce=None` for the ID token of a refresh."""
        if metadata.issuer is None:
            raise UpstreamError("an OpenID Connect upstream needs an issuer to check ID tokens against")
        if metadata.jwks_uri is None:
            raise UpstreamError("the upstream publishes no jwks_uri to check ID tokens with")
        algorithm, kid = signing_algorithm(id_token, metadata.id_token_algorithms)
        keys = await self._keys.candidates(metadata.jwks_uri, algorithm=algorithm, kid=kid)
        if not keys:
            raise AccessDeniedError("the ID token is signed by a key the identity provider does not publish")
        claims = verified_claims(
            id_token, keys, algorithm, issuer=metadata.issuer, client_id=client_id, now=self._upstream_clock()
        )
        check_audience_and_nonce(claims, client_id=client_id, nonce=nonce)
        return claims

    async def _jwks_document(self, url: str) -> dict[str, Any]:
        return json_object(await self._get(url, endpoint="jwks"), "JWKS")

    async def _userinfo(self, metadata: UpstreamMetadata, access_token: str) -> dict[str, Any]:
        if metadata.userinfo_endpoint is None:
            raise UpstreamError("a plain OAuth 2.0 upstream needs userinfo_endpoint to identify the user")
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        response = await self._get(metadata.userinfo_endpoint, headers=headers, endpoint="userinfo")
        if response.status_code in (401, 403):
            raise AccessDeniedError("the identity provider refused to say who logged in")
        return json_object(response, "userinfo response")

    async def _get(
        self, url: str, headers: dict[str, str] | None = None, *, endpoint: UpstreamEndpoint = "discovery"
    ) -> httpx.Response:
        try:
            response = await self._calls.send(endpoint, "GET", url, headers=headers)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the identity provider is unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise UpstreamError(f"the identity provider answered {response.status_code}")
        return response


def _tokens(body: dict[str, Any], now: float) -> UpstreamTokens:
    """The token response (RFC 6749 §5.1) as we keep it. The access token will travel in a header of
    every proxied request, so one that cannot (CR/LF, non-ASCII, a space) is refused here as an upstream
    fault (503), not found out later as a 500."""
    if not is_header_token(body["access_token"]):
        raise UpstreamError("the upstream access token is not a valid HTTP header value")
    token_type = str(body.get("token_type") or "Bearer")
    if not is_auth_scheme(token_type):
        raise UpstreamError("the upstream token_type is not a valid authentication scheme")
    expires_in = body.get("expires_in")
    try:
        expires_at = now + float(expires_in) if expires_in is not None else None
    except (TypeError, ValueError):
        expires_at = None
    refresh_token = body.get("refresh_token")
    scope = body.get("scope")
    return UpstreamTokens(
        access_token=body["access_token"],
        token_type=token_type,
        refresh_token=refresh_token if isinstance(refresh_token, str) and refresh_token else None,
        expires_at=expires_at,
        scope=scope if isinstance(scope, str) else None,
        issued_at=now,
    )


def _fields(tokens: UpstreamTokens) -> dict[str, Any]:
    return {name: getattr(tokens, name) for name in UpstreamTokens.__dataclass_fields__}


def _with_subject(tokens: UpstreamTokens, subject: str) -> UpstreamTokens:
    return UpstreamTokens(**{**_fields(tokens), "subject": subject})
