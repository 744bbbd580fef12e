"""EmbeddedAuthServer: builds every part from settings and hands the host its routes and middleware."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Iterable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp

from mcp_authserver._clock import Clock, system_clock
from mcp_authserver._crypto import credential_hash
from mcp_authserver.errors import StorageError
from mcp_authserver.http.authorize import AuthorizeEndpoint, ConsentEndpoint
from mcp_authserver.http.browser import BrowserBinding
from mcp_authserver.http.callback import CallbackEndpoint
from mcp_authserver.http.cors import CORSPolicy
from mcp_authserver.http.endpoint import Endpoint
from mcp_authserver.http.introspect import IntrospectionEndpoint
from mcp_authserver.http.metadata import DocumentEndpoint, JWKSEndpoint
from mcp_authserver.http.register import RegistrationEndpoint
from mcp_authserver.http.revoke import RevocationEndpoint
from mcp_authserver.http.routes import EndpointName, PathDispatcher, RouteTable
from mcp_authserver.http.token import TokenEndpoint
from mcp_authserver.middleware.bearer import AuthContextHook, BearerAuthMiddleware
from mcp_authserver.middleware.upstream_swap import UpstreamSwap
from mcp_authserver.oauth import rfc8414, rfc9728
from mcp_authserver.oauth.urls import is_loopback_host
from mcp_authserver.observability import prometheus
from mcp_authserver.observability.metrics import Metrics
from mcp_authserver.observability.otel import bridge as bridge_to_opentelemetry
from mcp_authserver.services.authorization import AuthorizationService
from mcp_authserver.services.clients import ClientService
from mcp_authserver.services.grants import AuthorizationCodeGrant, GrantRegistry, RefreshTokenGrant, TokenIssuance
from mcp_authserver.services.introspection import IntrospectionService
from mcp_authserver.services.rate_limits import RateLimiter, Rule
from mcp_authserver.services.revocation import RevocationService
from mcp_authserver.settings import (
    AuthServerSettings,
    StaticClientSettings,
    StorageSettings,
    UpstreamSettings,
    env_name,
)
from mcp_authserver.storage.connect import RedisConnection, redis_storage
from mcp_authserver.storage.memory import InMemoryStorage
from mcp_authserver.storage.protocols import DCRCredentialStore, Storage, UpstreamTokenStore
from mcp_authserver.storage.records import ClientRecord
from mcp_authserver.storage.sealing import Sealer
from mcp_authserver.tokens.access import AccessTokenIssuer, AccessTokenVerifier
from mcp_authserver.tokens.keys import KeyProvider
from mcp_authserver.upstream.config import UpstreamConfig
from mcp_authserver.upstream.provider import UpstreamProvider
from mcp_authserver.upstream.refresher import UpstreamTokenRefresher
from mcp_authserver.upstream.registration import UpstreamRegistrar
from mcp_authserver.upstream.revocation import UpstreamRevoker

if TYPE_CHECKING:
    from mcp_authserver.integrations.fastmcp import FastMCPAuthProvider
    from mcp_authserver.integrations.mcp_sdk import TokenVerifier

__all__ = ["EmbeddedAuthServer"]

logger = logging.getLogger("mcp_authserver")


class EmbeddedAuthServer:
    """An OAuth 2.1 authorization server for one protected MCP resource, federated to an upstream IdP.

    ```python
    auth = EmbeddedAuthServer(AuthServerSettings())
    app = Starlette(
        routes=[*auth.starlette_routes(), Route("/mcp", auth.protect(mcp_app))],  # swap=True for a proxy
        lifespan=auth.lifespan,
    )
    ```

    Every part can be replaced by passing it in; nothing here reads the environment. By default the
    storage is the one `settings.storage` names, the signing keys are read from
    `settings.tokens.signing_key_files` (an ephemeral key without them), the HTTP client towards the
    upstream is created here (and closed by `aclose`), and the clock is the system clock.
    """

    def __init__(
        self,
        settings: AuthServerSettings,
        *,
        storage: Storage | None = None,
        key_provider: KeyProvider | None = None,
        http_client: httpx.AsyncClient | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.settings = settings
        """The settings this server was built from."""
        self.clock = clock
        """The current time in epoch seconds (`time.time` by default): this server's own tokens, records and
        expiries go by it; the times in the upstream's ID tokens go by the wall clock."""
        self.metrics = Metrics()
        """Every count and latency this server records; `metrics_app()` serves them to Prometheus."""
        bridge_to_opentelemetry(self.metrics)
        tokens = settings.tokens
        self.key_provider = key_provider or key_provider_from_settings(settings)
        """The keys access tokens are signed with, published at `/.well-known/jwks.json`."""
        keys = settings.encryption.resolved_keys()
        self.sealer = Sealer(keys) if keys else None
        """Encrypts records at rest with `settings.encryption`'s keys; None without keys."""
        self.storage: Storage = storage or server_storage(
            settings, clock=clock, sealer=self.sealer, metrics=self.metrics
        )
        """Everything the server remembers (`mcp_authserver.storage`)."""
        self._owns_http = http_client is None
        self._http = http_client or upstream_http_client(settings.upstream)
        self.route_table = RouteTable(
            settings.issuer,
            settings.resource,
            registration=settings.registration.enabled,
            introspection=settings.introspection.enabled,
        )
        """Every path the server answers, and the URL of each endpoint."""
        callback_url = self.route_table.url("callback")
        registrar = None
        if not settings.upstream.client_id:
            registrar = UpstreamRegistrar(
                self.storage,
                self._http,
                issuer=settings.issuer,
                redirect_uri=callback_url,
                scopes=settings.upstream.scopes,
                clock=clock,
                metrics=self.metrics,
            )
        self.upstream_registrar = registrar
        """This server's registration at the upstream, when no client id is configured (else None)."""
        self.upstream = UpstreamProvider(
            upstream_config(settings.upstream), http=self._http, redirect_uri=callback_url, clock=clock,
            registrar=registrar, metrics=self.metrics,
        )  # fmt: skip
        """The identity provider users log in to: discovery, token requests, ID-token validation."""
        revocations = self.storage
        self.access_tokens = AccessTokenIssuer(
            self.key_provider,
            issuer=settings.issuer,
            ttl=tokens.access_token_ttl.total_seconds(),
            clock=clock,
            not_before=lambda: revocations.revocation_floor,
        )
        """Signs this server's access tokens."""
        self.verifier = AccessTokenVerifier(
            self.key_provider,
            issuer=settings.issuer,
            audience=settings.resource,
            leeway=tokens.leeway.total_seconds(),
            clock=clock,
        )
        """Checks this server's access tokens (signature, issuer, audience, times); revocation is checked apart."""
        self._build_services(settings, clock)
        self._routes = self._build_routes(settings)
        self._app = PathDispatcher(self._routes)
        self._cors = CORSPolicy(settings.cors_origins)
        self._closed = False
        self._announce_insecure_defaults(storage is None, key_provider is None)

    def _build_services(self, settings: AuthServerSettings, clock: Clock) -> None:
        """What happens behind the endpoints, each part given plain values from the settings."""
        tokens, registration = settings.tokens, settings.registration
        leeway = tokens.leeway.total_seconds()
        revocation_ttl = tokens.access_token_ttl.total_seconds() + leeway
        self.upstream_revoker = UpstreamRevoker(self.upstream)
        """Revokes the user's upstream tokens (RFC 7009) when a login ends; closed by `aclose`."""
        revoker = self.upstream_revoker
        self.revocation = RevocationService(
            self.storage,
            self.verifier,
            revocation_ttl=revocation_ttl,
            leeway=leeway,
            clock=clock,
            revoke_upstream=lambda upstream, grant_id: revoker.schedule(upstream, grant_id=grant_id),
            metrics=self.metrics,
        )
        """Ends logins and tokens: RFC 7009, code or refresh-token reuse, an upstream that ended the login."""
        issuance = TokenIssuance(self.access_tokens, clock=clock, metrics=self.metrics)
        self.codes = AuthorizationCodeGrant(
            self.storage,
            issuance,
            self.revocation,
            code_ttl=tokens.authorization_code_ttl.total_seconds(),
            refresh_ttl=tokens.refresh_token_ttl.total_seconds(),
            access_only_ttl=revocation_ttl,
            max_lifetime=tokens.max_grant_lifetime.total_seconds(),
            clock=clock,
        )
        refresh = RefreshTokenGrant(
            self.storage,
            issuance,
            self.revocation,
            refresh_ttl=tokens.refresh_token_ttl.total_seconds(),
            grace=tokens.refresh_grace_period.total_seconds(),
            clock=clock,
        )
        self.grant_types = GrantRegistry([self.codes, refresh])
        """The grant types of the token endpoint, advertised in the metadata and accepted at registration."""
        self.clients = ClientService(
            self.storage,
            [_static_client(client) for client in settings.clients],
            client_ttl=registration.client_ttl.total_seconds(),
            unused_client_ttl=registration.new_client_ttl.total_seconds(),
            clock=clock,
            metrics=self.metrics,
        )
        self.authorization = AuthorizationService(
            self.clients,
            self.storage,
            self.upstream,
            self.codes,
            issuer=settings.issuer,
            resource=settings.resource,
            scopes_supported=settings.scopes_supported,
            default_scopes=settings.default_scopes,
            trusted_client_ids=settings.consent.trusted_client_ids,
            login_ttl=tokens.login_ttl.total_seconds(),
            # An approval is remembered as long as a registration in use is.
            approval_ttl=registration.client_ttl.total_seconds(),
            metrics=self.metrics,
        )
        self.introspection = IntrospectionService(self.storage, self.verifier, issuer=settings.issuer)
        """RFC 7662: what a token of ours is, for its client or a listed resource server."""
        self.upstream_refresher = UpstreamTokenRefresher(
            self.storage,
            self.upstream,
            end_login=self.revocation.end_login,
            margin=settings.upstream.refresh_margin.total_seconds(),
            idle_ttl=tokens.refresh_token_ttl.total_seconds(),
            clock=clock,
        )

    def _build_routes(self, settings: AuthServerSettings) -> dict[str, ASGIApp]:
        """Each endpoint with the services it uses, placed by the route table."""
        table = self.route_table
        # The browser id lives as long as the approvals remembered under it (so a client this browser approved
        # has its errors redirected to it on later logins too), and at least as long as a login may take.
        cookie_lifetime = max(settings.tokens.login_ttl, settings.registration.client_ttl)
        browser = BrowserBinding(
            secure=settings.issuer.startswith("https://"), max_age=int(cookie_lifetime.total_seconds())
        )
        # Off, there is no limiter at all: not one storage call (load tests).
        rates = settings.rate_limit
        limits: dict[Rule, int] = {
            "register": rates.register_per_minute,
            "authorize": rates.authorize_per_minute,
            "consent": rates.consent_per_minute,
            "token": rates.token_per_minute,
            "token-client": rates.token_per_client_per_minute,
        }
        limiter = RateLimiter(self.storage, limits) if rates.enabled else None
        metadata_documents: dict[str, DocumentEndpoint] = {}
        for route in table.rows:
            if route.endpoint == "metadata":
                document = rfc8414.document(
                    issuer=settings.issuer,
                    endpoints=table.metadata_endpoints(),
                    scopes=settings.scopes_supported,
                    grant_types=self.grant_types.names,
                    signing_algorithms=self.key_provider.algorithms,
                    oidc=rfc8414.is_oidc_path(route.path),
                )
                metadata_documents[route.path] = DocumentEndpoint(document)
        resource_document = rfc9728.document(
            resource=settings.resource,
            issuer=settings.issuer,
            scopes=settings.scopes_supported,
            resource_name=settings.resource_name,
        )
        endpoints: dict[EndpointName, Endpoint | Mapping[str, Endpoint]] = {
            "authorize": AuthorizeEndpoint(
                self.authorization,
                browser,
                service_name=settings.consent.service_name,
                consent_url=table.url("consent"),
            ),
            "consent": ConsentEndpoint(self.authorization, browser),
            "callback": CallbackEndpoint(self.authorization, browser),
            "token": TokenEndpoint(self.clients, self.grant_types, limiter),
            "revoke": RevocationEndpoint(self.clients, self.revocation),
            "register": RegistrationEndpoint(
                self.clients,
                max_redirect_uris=settings.registration.max_redirect_uris,
                scopes_supported=settings.scopes_supported,
                grant_types=self.grant_types.names,
            ),
            "introspect": IntrospectionEndpoint(
                self.clients,
                self.introspection,
                {
                    server.client_id: credential_hash(server.resolved_secret())
                    for server in settings.introspection.resource_servers
                },
            ),
            "jwks": JWKSEndpoint(self.key_provider),
            "metadata": metadata_documents,
            "resource_metadata": DocumentEndpoint(resource_document),
        }
        return table.apps(endpoints, cors=CORSPolicy(settings.cors_origins), limiter=limiter)

    @property
    def routes(self) -> Mapping[str, ASGIApp]:
        """Every path this server answers, exactly: `/oauth/…` and each `/.well-known/…` path."""
        return self._routes

    @property
    def app(self) -> ASGIApp:
        """One ASGI app answering every path in `routes` (404 for any other), for hosts that route by prefix."""
        return self._app

    def metrics_app(self) -> ASGIApp:
        """The Prometheus exposition of `metrics`, to mount where only your scraper reaches (`/metrics`).

        Needs the `metrics` extra (prometheus_client); ConfigurationError says so without it.
        """
        return prometheus.metrics_app(self.metrics)

    @property
    def upstream_tokens(self) -> UpstreamTokenStore:
        """Secret-bearing: the users' upstream tokens, per login. Never log its records."""
        return self.storage

    @property
    def dcr_store(self) -> DCRCredentialStore:
        """Secret-bearing: this server's own registrations at upstream IdPs. Never log its records."""
        return self.storage

    @property
    def resource_metadata_url(self) -> str:
        """The URL of the RFC 9728 protected resource metadata of `settings.resource`, as the 401 challenge names it."""
        return rfc9728.metadata_url(self.settings.resource)

    def starlette_routes(self) -> list[BaseRoute]:
        """The routes as Starlette/FastAPI route objects, to put in front of the host's own."""
        return [Route(path, endpoint=app) for path, app in self._routes.items()]

    def register(self, router: Any) -> None:
        """Add the routes to a Starlette or FastAPI app or router (anything with `.routes`, or `.router.routes`)."""
        target = router.router if hasattr(router, "router") and hasattr(router.router, "routes") else router
        target.routes[0:0] = self.starlette_routes()

    def protect(self, app: ASGIApp, *, required_scopes: Iterable[str] | None = None, swap: bool = False) -> ASGIApp:
        """Wrap the MCP endpoint: only requests bearing a valid access token of ours get through.

        `required_scopes` defaults to what the 401 challenge asks for: `default_scopes` without
        `offline_access` (which is about refresh tokens, not about this resource). A token without
        them gets 403 `insufficient_scope`, so a client that asked for less cannot use the endpoint
        the challenge told it how to reach. Pass `()` to require none.

        A proxy passes `swap=True`: the request then carries the user's upstream token instead of ours
        (`UpstreamSwap`, applied by the bearer middleware), refreshed when due. Off by default: an MCP
        server that serves its own tools never needs the upstream token, and with the swap on each of
        its requests would depend on the upstream's refresh (an upstream that ends the login ends it here).
        """
        required_scopes = self._required_scopes(required_scopes)
        upstream_swap = None
        if swap:
            upstream_swap = UpstreamSwap(
                self.upstream_refresher,
                resource_metadata_url=self.resource_metadata_url,
                header=self.settings.upstream.token_header,
            )
        return BearerAuthMiddleware(
            app,
            verifier=self.verifier,
            revocations=self.storage,
            resource=self.settings.resource,
            resource_metadata_url=self.resource_metadata_url,
            required_scopes=required_scopes,
            challenge_scopes=self.settings.default_scopes,
            cors=self._cors,
            swap=upstream_swap,
            auth_context=self._sdk_auth_context(),
            metrics=self.metrics,
        )

    def token_verifier(self) -> TokenVerifier:
        """An `mcp` SDK `TokenVerifier`, for SDK servers that authenticate requests themselves."""
        from mcp_authserver.integrations.mcp_sdk import TokenVerifier

        return TokenVerifier(self.verifier, self.storage, resource=self.settings.resource)

    def fastmcp_provider(self, *, required_scopes: Iterable[str] | None = None) -> FastMCPAuthProvider:
        """FastMCP's `auth=`: `FastMCP("x", auth=auth.fastmcp_provider())` (needs the `fastmcp` extra).

        Its `http_app()` then serves our routes too, and `get_access_token()` in a tool returns our
        subject. `required_scopes` as for `protect`.
        """
        from mcp_authserver.integrations.fastmcp import FastMCPAuthProvider

        return FastMCPAuthProvider(
            verifier=self.verifier,
            revocations=self.storage,
            resource=self.settings.resource,
            resource_metadata_url=self.resource_metadata_url,
            routes=self.starlette_routes(),
            required_scopes=self._required_scopes(required_scopes),
            challenge_scopes=self.settings.default_scopes,
        )

    def _sdk_auth_context(self) -> AuthContextHook | None:
        """The `mcp` SDK's auth context for apps behind `protect` (its `get_access_token()`), when the
        SDK is installed. Imported here, on first use, so that `import mcp_authserver` needs no SDK."""
        try:
            from mcp_authserver.integrations.mcp_sdk import sdk_auth_context
        except ModuleNotFoundError as exc:
            if exc.name is None or exc.name.split(".")[0] != "mcp":
                raise
            return None
        return sdk_auth_context(self.settings.resource)

    def _required_scopes(self, required_scopes: Iterable[str] | None) -> list[str]:
        if required_scopes is None:
            return [scope for scope in self.settings.default_scopes if scope != "offline_access"]
        return list(required_scopes)

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any = None) -> AsyncIterator[None]:
        """For `Starlette(lifespan=auth.lifespan)`; closes the server on shutdown."""
        await self.start()
        try:
            yield
        finally:
            await self.aclose()

    async def start(self) -> None:
        """Probe the storage once, so an outage shows in the log at startup. Never fails:
        the server starts anyway and answers 503 until the storage is reachable."""
        with contextlib.suppress(StorageError):
            await self.storage.ping()

    async def __aenter__(self) -> EmbeddedAuthServer:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Cancel pending upstream revocations, release the HTTP client and the storage connection.
        Safe to call more than once."""
        if self._closed:
            return
        self._closed = True
        await self.upstream_revoker.aclose()  # before the HTTP client it uses is closed
        if self._owns_http:
            await self._http.aclose()
        await self.storage.aclose()

    def _announce_insecure_defaults(self, memory_storage: bool, ephemeral_key: bool) -> None:
        if ephemeral_key and not self.settings.tokens.signing_key_files:
            logger.warning(
                "no signing key configured (MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES): using an ephemeral key; "
                "every restart logs every client out",
                extra={"event": "startup.ephemeral_key"},
            )
        if memory_storage and self.settings.storage.is_memory:
            logger.info(
                "in-memory storage: logins do not survive a restart and are not shared between processes",
                extra={"event": "startup.memory_storage"},
            )
        elif memory_storage:
            logger.info("storage: %s", self.settings.storage.redacted_url, extra={"event": "startup.storage"})
            if self.sealer is None:
                logger.warning(
                    "no encryption key (MCP_AUTHSERVER_ENCRYPTION__KEYS): upstream tokens are stored in Redis in clear",
                    extra={"event": "startup.no_encryption_key"},
                )
        for name, url in (("issuer", self.settings.issuer), ("resource", self.settings.resource)):
            host = url.split("://", 1)[1].split("/", 1)[0].rsplit(":", 1)[0]
            if url.startswith("http://") and not is_loopback_host(host):
                logger.warning("the %s %s is plain http outside loopback", name, url, extra={"event": "startup.http"})


def key_provider_from_settings(settings: AuthServerSettings) -> KeyProvider:
    """The configured signing keys, or an ephemeral one; raises ConfigurationError naming a file that
    cannot be read or holds no usable key."""
    if settings.tokens.signing_key_files:
        return KeyProvider.from_files(settings.tokens.signing_key_files)
    return KeyProvider.ephemeral(settings.tokens.algorithm)


def _static_client(client: StaticClientSettings) -> ClientRecord:
    """A pre-registered client from settings (MCP authorization §5.2): never expires, secret hashed."""
    secret = client.client_secret.get_secret_value() if client.client_secret else None
    return ClientRecord(
        client_id=client.client_id,
        redirect_uris=tuple(client.redirect_uris),
        token_endpoint_auth_method=client.token_endpoint_auth_method or ("client_secret_basic" if secret else "none"),
        grant_types=tuple(client.grant_types),
        client_secret_hash=credential_hash(secret) if secret else None,
        client_name=client.client_name,
        static=True,
    )


def upstream_http_client(upstream: UpstreamSettings) -> httpx.AsyncClient:
    """The client every request to the upstream goes through (unless the host passes its own)."""
    return httpx.AsyncClient(
        timeout=upstream.timeout_seconds, follow_redirects=False, headers={"User-Agent": "mcp-authserver"}
    )


def upstream_config(upstream: UpstreamSettings) -> UpstreamConfig:
    """The upstream client's plain configuration from its settings group (also for hosts and tests that
    build an `UpstreamProvider` themselves)."""
    if upstream.client_id:
        names = ("client_id", "client_secret", "client_secret_file", "token_endpoint_auth_method")
        hint = ", ".join(env_name("upstream", name) for name in names)
    else:
        hint = (
            "this server's dynamic registration at the upstream (no "
            f"{env_name('upstream', 'client_id')} is set): the upstream may have deleted it"
        )
    return UpstreamConfig(
        issuer=upstream.issuer,
        client_id=upstream.client_id,
        client_secret=upstream.resolved_client_secret,
        authorization_endpoint=upstream.authorization_endpoint,
        token_endpoint=upstream.token_endpoint,
        userinfo_endpoint=upstream.userinfo_endpoint,
        jwks_uri=upstream.jwks_uri,
        revocation_endpoint=upstream.revocation_endpoint,
        token_endpoint_auth_method=upstream.token_endpoint_auth_method,
        scopes=tuple(upstream.scopes),
        extra_authorize_params=dict(upstream.extra_authorize_params),
        subject_claim=upstream.subject_claim,
        discovery_ttl=upstream.discovery_ttl.total_seconds(),
        client_settings_hint=hint,
    )


def server_storage(
    settings: AuthServerSettings, *, clock: Clock, sealer: Sealer | None, metrics: Metrics | None = None
) -> Storage:
    """The storage a server built from these settings uses: revocations are kept as long as an access
    token may live."""
    tokens = settings.tokens
    return storage_from_settings(
        settings.storage,
        clock=clock,
        sealer=sealer,
        allow_plaintext=settings.encryption.allow_plaintext_reads,
        revocation_retention=(tokens.access_token_ttl + tokens.leeway).total_seconds(),
        metrics=metrics,
    )


def storage_from_settings(
    settings: StorageSettings,
    *,
    clock: Clock,
    sealer: Sealer | None = None,
    allow_plaintext: bool = False,
    revocation_retention: float = 3630.0,
    metrics: Metrics | None = None,
) -> Storage:
    """The storage backend the settings name (also for hosts and tests that build one themselves).

    `sealer` encrypts the records at rest; process memory is not "at rest", so the memory backend keeps
    them as they are.
    """
    if settings.is_memory:
        return InMemoryStorage(max_entries=settings.max_entries, clock=clock)
    connection = RedisConnection(
        url=settings.url,
        shown_url=settings.redacted_url,
        username=settings.username,
        password=settings.resolved_password(),
        sentinel_password=settings.sentinel_password.get_secret_value() if settings.sentinel_password else None,
        tls_ca_file=str(settings.tls_ca_file) if settings.tls_ca_file is not None else None,
        socket_timeout=settings.socket_timeout,
        pool_size=settings.pool_size,
        pool_timeout=settings.pool_timeout,
    )
    return redis_storage(
        connection,
        key_prefix=settings.key_prefix,
        clock=clock,
        revocation_sync_interval=settings.revocation_sync_interval.total_seconds(),
        revocation_retention=revocation_retention,
        sealer=sealer,
        allow_plaintext=allow_plaintext,
        metrics=metrics,
    )
