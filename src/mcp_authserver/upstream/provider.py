"""Our client side at the upstream IdP: discovery, the authorization URL, code redemption, refresh.

Discovery is lazy and cached, so a server whose IdP is down still starts and answers 503 until
the IdP is back (a crash loop at boot helps nobody). Every failure to reach the IdP becomes an
`UpstreamError`; every refusal by the IdP of a user's login becomes `AccessDeniedError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import jwt

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver._crypto import equals
from mcp_authserver.errors import AccessDeniedError, UpstreamError, UpstreamRefreshError
from mcp_authserver.oauth.rfc6749 import add_query
from mcp_authserver.settings import UpstreamSettings, env_name
from mcp_authserver.storage.records import UpstreamTokens
from mcp_authserver.upstream.discovery import ID_TOKEN_ALGORITHMS, UpstreamMetadata, discover
from mcp_authserver.upstream.jwks import UpstreamKeySet
from mcp_authserver.upstream.registration import UpstreamRegistrar
from mcp_authserver.upstream.sanitize import clean_error, is_auth_scheme, is_header_token, json_object

__all__ = ["UpstreamClient", "UpstreamIdentity", "UpstreamMetadata", "UpstreamProvider"]

logger = logging.getLogger(__name__)


# RFC 6749 §5.2: our own credentials or registration are wrong; no user did anything.
_CLIENT_ERRORS = frozenset({"invalid_client", "unauthorized_client"})


class _RefusedError(UpstreamError):
    """The token endpoint refused the grant itself (RFC 6749 §5.2); `error` is already cleaned.

    Callers decide what it means (a failed login, or at refresh only `invalid_grant` ends one); an
    UpstreamError so that, were a caller to miss it, it is still a 503 and never a 500.
    """

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


@dataclass(frozen=True)
class UpstreamClient:
    """How we identify ourselves at the upstream token endpoint."""

    client_id: str
    secret: str | None = field(repr=False)
    auth_method: str | None = None


@dataclass(frozen=True)
class UpstreamIdentity:
    """Who logged in at the upstream, and the tokens the upstream gave us for them."""

    subject: str
    claims: dict[str, Any]
    tokens: UpstreamTokens


class UpstreamProvider:
    def __init__(
        self,
        settings: UpstreamSettings,
        *,
        http: httpx.AsyncClient,
        redirect_uri: str,
        clock: Clock = system_clock,
        registrar: UpstreamRegistrar | None = None,
    ) -> None:
        self._settings = settings
        self._registrar = registrar
        self._http = http
        self.redirect_uri = redirect_uri
        self._clock = clock
        self._metadata: UpstreamMetadata | None = None
        self._metadata_expires = 0.0
        self._metadata_lock = asyncio.Lock()
        self._keys = UpstreamKeySet(self._jwks_document, clock=clock)

    async def client(self) -> UpstreamClient:
        """Our client credentials at the upstream: configured, or obtained by dynamic registration."""
        settings = self._settings
        if settings.client_id:
            secret = settings.resolved_client_secret()
            return UpstreamClient(settings.client_id, secret, settings.token_endpoint_auth_method)
        if self._registrar is None:
            raise UpstreamError("no upstream client id is configured and dynamic registration is off")
        metadata = await self.metadata()
        resolution = await self._registrar.resolve(metadata)
        return UpstreamClient(resolution.client_id, resolution.client_secret, resolution.token_endpoint_auth_method)

    async def metadata(self) -> UpstreamMetadata:
        if self._metadata is not None and self._clock() < self._metadata_expires:
            return self._metadata
        async with self._metadata_lock:
            if self._metadata is None or self._clock() >= self._metadata_expires:
                self._metadata = await discover(self._settings, self._get)
                self._metadata_expires = self._clock() + self._settings.discovery_ttl.total_seconds()
        return self._metadata

    async def response_issuer(self) -> tuple[str | None, bool]:
        """The upstream's issuer, and whether its metadata promises `iss` on authorization responses
        (RFC 9207 §3): what the callback checks the response against."""
        metadata = await self.metadata()
        return metadata.issuer, metadata.iss_parameter_supported

    async def authorization_url(self, *, state: str, code_challenge: str, nonce: str) -> str:
        metadata = await self.metadata()
        params: dict[str, str | None] = {
            **self._settings.extra_authorize_params,
            "response_type": "code",
            "client_id": (await self.client()).client_id,
            "redirect_uri": self.redirect_uri,
            "scope": " ".join(self._settings.scopes),
            "state": state,
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
            "nonce": nonce if self._settings.is_oidc else None,
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
            body = await self._token_request(metadata, form)
        except _RefusedError as refused:
            raise AccessDeniedError(f"the identity provider refused the request ({refused.error})") from None
        tokens = _tokens(body, self._clock())
        id_token = body.get("id_token")
        if self._settings.is_oidc:
            if not isinstance(id_token, str):
                raise AccessDeniedError("the identity provider returned no ID token")
            claims = await self._validate_id_token(
                id_token, metadata, nonce=nonce, client_id=(await self.client()).client_id
            )
        else:
            claims = await self._userinfo(metadata, tokens.access_token)
        subject = _subject(claims, self._settings.subject_claim)
        if subject is None:
            raise AccessDeniedError(f"the identity provider did not say who logged in ({self._settings.subject_claim})")
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
            body = await self._token_request(metadata, {"grant_type": "refresh_token", "refresh_token": refresh_token})
        except _RefusedError as refused:
            if refused.error == "invalid_grant":
                raise UpstreamRefreshError("the identity provider refused the refresh token (invalid_grant)") from None
            logger.warning(
                "the upstream refused a refresh with %s; the login is kept",
                refused.error,
                extra={"event": "upstream.refresh_failed"},
            )
            raise UpstreamError(f"the upstream refused a refresh ({refused.error})") from None
        tokens = _tokens(body, self._clock())
        if self._settings.is_oidc and "id_token" in body:
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
        response = await self._authenticated_post(metadata, metadata.revocation_endpoint, form, "revocation endpoint")
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
        if subject is not None and _subject(claims, self._settings.subject_claim) != subject:
            logger.warning(
                "the upstream refreshed a login for another user", extra={"event": "upstream.id_token_subject_changed"}
            )
            raise UpstreamRefreshError("the refreshed ID token names another user")

    async def _token_request(self, metadata: UpstreamMetadata, form: dict[str, str]) -> dict[str, Any]:
        """The token endpoint's successful answer (RFC 6749 §5.1).

        Raises `_RefusedError` only when the upstream refused the grant itself (RFC 6749 §5.2); every
        other failure is ours or the upstream's, not the user's, and raises UpstreamError: the
        network, 5xx, 429, an answer that is not JSON, and our client being refused.
        """
        response = await self._authenticated_post(metadata, metadata.token_endpoint, form, "token endpoint")
        if response.status_code >= 500 or response.status_code == 429:
            raise UpstreamError(f"the upstream token endpoint answered {response.status_code}")
        body = json_object(response, "token response")
        if response.status_code >= 400 or "error" in body:
            # Never repeated raw: the upstream chooses this string (see upstream/sanitize.py).
            error = clean_error(body["error"]) if "error" in body else str(response.status_code)
            if error in _CLIENT_ERRORS:
                logger.error(
                    "the upstream token endpoint refused this server's client (%s): check %s",
                    error,
                    self._client_settings_hint(),
                    extra={"event": "upstream.client_refused"},
                )
                raise UpstreamError(f"the upstream token endpoint refused our client ({error})")
            logger.info("upstream refused a token request: %s", error, extra={"event": "upstream.token_refused"})
            if error in ("temporarily_unavailable", "server_error"):
                raise UpstreamError(f"the upstream token endpoint answered {error}")
            raise _RefusedError(error)
        if not isinstance(body.get("access_token"), str):
            raise UpstreamError("the upstream token response has no access_token")
        return body

    async def _authenticated_post(
        self, metadata: UpstreamMetadata, url: str, form: dict[str, str], what: str
    ) -> httpx.Response:
        """A form POST with our client authentication (RFC 6749 §2.3; RFC 7009 §2.1 uses the same)."""
        client = await self.client()
        secret = client.secret
        method = client.auth_method or _pick_auth_method(metadata, secret)
        if method == "client_secret_basic" and secret is not None:
            # RFC 6749 §2.3.1: form-encode both parts before base64.
            auth: httpx.BasicAuth | None = httpx.BasicAuth(quote(client.client_id, safe=""), quote(secret, safe=""))
        else:
            auth = None
            form = {**form, "client_id": client.client_id}
            if method == "client_secret_post" and secret is not None:
                form["client_secret"] = secret
        try:
            return await self._http.post(
                url, data=form, headers={"Accept": "application/json"}, auth=auth or httpx.USE_CLIENT_DEFAULT
            )
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the upstream {what} is unreachable: {type(exc).__name__}") from None

    def _client_settings_hint(self) -> str:
        """Where an operator fixes a refused client: the configured credentials, or our registration."""
        if self._settings.client_id:
            names = ("client_id", "client_secret", "client_secret_file", "token_endpoint_auth_method")
            return ", ".join(env_name("upstream", name) for name in names)
        return (
            "this server's dynamic registration at the upstream (no "
            f"{env_name('upstream', 'client_id')} is set): the upstream may have deleted it"
        )

    async def _validate_id_token(
        self, id_token: str, metadata: UpstreamMetadata, *, nonce: str | None, client_id: str
    ) -> dict[str, Any]:
        """OIDC Core §3.1.3.7: signature by the upstream's keys, iss, aud, azp, exp, iat and nonce.

        `nonce=None` for the ID token of a refresh, which carries none (OIDC Core §12.2).
        """
        if metadata.issuer is None:
            raise UpstreamError("an OpenID Connect upstream needs an issuer to check ID tokens against")
        if metadata.jwks_uri is None:
            raise UpstreamError("the upstream publishes no jwks_uri to check ID tokens with")
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.InvalidTokenError:
            raise AccessDeniedError("the identity provider returned a malformed ID token") from None
        algorithm, kid = header.get("alg"), header.get("kid")
        if not isinstance(algorithm, str) or algorithm not in ID_TOKEN_ALGORITHMS:
            raise AccessDeniedError("the ID token is signed with an algorithm we do not accept")
        if algorithm not in metadata.id_token_algorithms:
            raise AccessDeniedError("the ID token is signed with an algorithm we do not accept")
        if kid is not None and not isinstance(kid, str):
            raise AccessDeniedError("the identity provider returned a malformed ID token")
        keys = await self._keys.candidates(metadata.jwks_uri, algorithm=algorithm, kid=kid)
        if not keys:
            raise AccessDeniedError("the ID token is signed by a key the identity provider does not publish")
        claims = _verified_claims(id_token, keys, algorithm, issuer=metadata.issuer, client_id=client_id)
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        # OIDC Core §3.1.3.7 items 4-5: with several audiences azp must be us; present, it must be us anyway.
        if (len(audiences) > 1 or "azp" in claims) and claims.get("azp") != client_id:
            raise AccessDeniedError("the ID token was issued to another client (azp)")
        if nonce is not None and (not isinstance(claims.get("nonce"), str) or not equals(claims["nonce"], nonce)):
            raise AccessDeniedError("the ID token does not carry the nonce of this login")
        return claims

    async def _jwks_document(self, url: str) -> dict[str, Any]:
        return json_object(await self._get(url), "JWKS")

    async def _userinfo(self, metadata: UpstreamMetadata, access_token: str) -> dict[str, Any]:
        if metadata.userinfo_endpoint is None:
            raise UpstreamError("a plain OAuth 2.0 upstream needs userinfo_endpoint to identify the user")
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        response = await self._get(metadata.userinfo_endpoint, headers=headers)
        if response.status_code in (401, 403):
            raise AccessDeniedError("the identity provider refused to say who logged in")
        return json_object(response, "userinfo response")

    async def _get(self, url: str, headers: dict[str, str] | None = None) -> httpx.Response:
        try:
            response = await self._http.get(url, headers=headers)
        except httpx.HTTPError as exc:
            raise UpstreamError(f"the identity provider is unreachable: {type(exc).__name__}") from None
        if response.status_code >= 500:
            raise UpstreamError(f"the identity provider answered {response.status_code}")
        return response


def _verified_claims(id_token: str, keys: list[Any], algorithm: str, *, issuer: str, client_id: str) -> dict[str, Any]:
    """The claims, once one candidate key verifies the signature and the claims hold.

    Without a `kid` several keys may fit; a wrong one is a bad signature, and the next is tried.
    Any other failure, of a claim or of the key itself, is a refusal, never an exception we did
    not expect (a key PyJWT cannot use raises InvalidKeyError, which is no InvalidTokenError).
    """
    for key in keys:
        try:
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=[algorithm],
                audience=client_id,
                issuer=issuer,
                leeway=60,
                options={"require": ["iss", "sub", "aud", "exp", "iat"]},
            )
        except jwt.InvalidSignatureError:
            continue
        except jwt.PyJWTError as exc:
            logger.warning("rejected an upstream ID token: %s", exc, extra={"event": "upstream.id_token_invalid"})
            raise AccessDeniedError("the identity provider's ID token did not validate") from None
        return claims
    logger.warning("rejected an upstream ID token: bad signature", extra={"event": "upstream.id_token_invalid"})
    raise AccessDeniedError("the identity provider's ID token did not validate")


def _subject(claims: dict[str, Any], claim: str) -> str | None:
    """The user's identifier at the upstream, as a non-empty string (GitHub's numeric `id` included)."""
    subject = claims.get(claim)
    if isinstance(subject, int) and not isinstance(subject, bool):
        subject = str(subject)
    return subject if isinstance(subject, str) and subject else None


def _pick_auth_method(metadata: UpstreamMetadata, secret: str | None) -> str:
    if secret is None:
        return "none"
    supported = metadata.token_endpoint_auth_methods or ("client_secret_basic",)
    return "client_secret_basic" if "client_secret_basic" in supported else "client_secret_post"


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
