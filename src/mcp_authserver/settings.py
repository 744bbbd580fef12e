"""Configuration, read from `MCP_AUTHSERVER_*` environment variables (nested groups joined by `__`).

The server never reads the environment itself; everything arrives through these models, so a host
can also build them in code. A bad value fails at construction with the variable's name in the
message (`ConfigurationError`), and so does an `MCP_AUTHSERVER_*` variable that names no setting: a
misspelt security setting silently left at its default is worse than a server that refuses to start.

Every URL is checked here, not where it is first used: a wrong scheme, host, port or database number
would otherwise surface as a failed login or a 503 hours later, or not at all (redis-py reads a
database path it cannot parse as database 0). Messages show the value without its credentials.
"""

from __future__ import annotations

import difflib
import functools
import json
import os
import re
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    FilePath,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_serializer,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from mcp_authserver._storage_url import StorageURL, example_url, url_problem
from mcp_authserver.errors import ConfigurationError
from mcp_authserver.oauth.rfc7591 import has_iss_parameter
from mcp_authserver.oauth.urls import canonical_origin, canonical_url, is_loopback_host, web_url_problem

__all__ = [
    "ENV_PREFIX",
    "AuthServerSettings",
    "ConsentSettings",
    "EncryptionSettings",
    "IntrospectionSettings",
    "RateLimitSettings",
    "RegistrationSettings",
    "ResourceServerSettings",
    "StaticClientSettings",
    "StorageSettings",
    "TokenSettings",
    "UpstreamSettings",
]

ENV_PREFIX = "MCP_AUTHSERVER_"
ENV_DELIMITER = "__"


def _split_words(value: Any) -> Any:
    """Lists come from the environment as a JSON array, or words separated by spaces or commas."""
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            return json.loads(text)
        return [word for word in text.replace(",", " ").split() if word]
    return value


def _json_object(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else {}
    return value


def _seconds(value: Any) -> Any:
    """Durations come from the environment as seconds ("600") or ISO 8601 ("PT10M")."""
    if isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        return float(value)
    return value


Duration = Annotated[timedelta, BeforeValidator(_seconds)]
WordList = Annotated[list[str], NoDecode]
PathList = Annotated[list[FilePath], NoDecode]


def _refused(value: str, problem: str, example: str) -> ValueError:
    """One format for every bad URL: what is wrong, the value as it may be shown, a value that works."""
    shown = StorageURL.of(value).shown if value else ""  # credentials and query values masked
    return ValueError(f"{problem} (got {shown!r}; e.g. {example})")


def _canonical(value: str, *, what: str, example: str) -> str:
    if (problem := web_url_problem(value.strip(), query=False)) is not None:
        raise _refused(value.strip(), problem, example)
    return canonical_url(value, what=what)


_PRIVATE_USE_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^#\s]+")


class _Group(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


_UPSTREAM_EXAMPLES = {
    "issuer": "https://idp.example.com/oauth2/default",
    "authorization_endpoint": "https://idp.example.com/oauth2/authorize",
    "token_endpoint": "https://idp.example.com/oauth2/token",
    "userinfo_endpoint": "https://idp.example.com/oauth2/userinfo",
    "jwks_uri": "https://idp.example.com/oauth2/keys",
    "revocation_endpoint": "https://idp.example.com/oauth2/revoke",
}


class UpstreamSettings(_Group):
    """The identity provider users actually log in to (OpenID Connect, or plain OAuth 2.0)."""

    issuer: str | None = None
    """Issuer URL; its `/.well-known/openid-configuration` (or RFC 8414 document) supplies the endpoints.
    Required for OpenID Connect (`openid` in scopes), even with every endpoint set: ID tokens' `iss`."""
    authorization_endpoint: str | None = None
    token_endpoint: str | None = None
    userinfo_endpoint: str | None = None
    jwks_uri: str | None = None
    revocation_endpoint: str | None = None
    """RFC 7009 endpoint where the user's upstream tokens are revoked when their login ends here;
    by default the discovered `revocation_endpoint`, if any."""
    client_id: str | None = None
    """None: this server registers itself at the upstream (RFC 7591), once for all replicas."""
    client_secret: SecretStr | None = None
    client_secret_file: FilePath | None = None
    scopes: WordList = Field(default_factory=lambda: ["openid", "profile", "email"])
    extra_authorize_params: Annotated[dict[str, str], NoDecode] = Field(default_factory=dict)
    token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post", "none"] | None = None
    """How we authenticate at the upstream token endpoint; by default the first the upstream supports."""
    subject_claim: str = "sub"
    """The claim (ID token, or userinfo for plain OAuth 2.0) that identifies the user, e.g. `oid` or `id`."""
    timeout_seconds: float = Field(default=10.0, gt=0)
    discovery_ttl: Duration = timedelta(hours=1)
    refresh_margin: Duration = timedelta(seconds=60)
    """An upstream access token expiring within this margin is refreshed before a request uses it."""
    token_header: str = "Authorization"
    """The header in which a proxied backend receives the user's upstream token (as `Bearer …`)."""

    _split = field_validator("scopes", mode="before")(_split_words)
    _extra = field_validator("extra_authorize_params", mode="before")(_json_object)

    @field_validator(*_UPSTREAM_EXAMPLES)
    @classmethod
    def _url(cls, value: str | None, info: ValidationInfo) -> str | None:
        """An empty variable means unset, as it always did (every use tested the URL for truth)."""
        if value is None or not value.strip():
            return None
        name = info.field_name or ""
        # An issuer is an identifier (RFC 8414 §2): discovery appends a path to it, so no query.
        if (problem := web_url_problem(value.strip(), query=name != "issuer")) is not None:
            raise _refused(value.strip(), problem, _UPSTREAM_EXAMPLES[name])
        return value.strip()

    @model_validator(mode="after")
    def _check(self) -> UpstreamSettings:
        if self.issuer is None and not (self.authorization_endpoint and self.token_endpoint):
            raise ValueError("set issuer, or both authorization_endpoint and token_endpoint")
        if self.client_secret is not None and self.client_secret_file is not None:
            raise ValueError("set client_secret or client_secret_file, not both")
        if not self.client_id:
            if self.issuer is None:
                raise ValueError("set client_id, or issuer so this server can register at the upstream itself")
            if self.client_secret is not None or self.client_secret_file is not None:
                raise ValueError("client_secret goes with client_id")
        if self.is_oidc and self.issuer is None:
            # OIDC Core §3.1.3.7 item 2: the ID token's iss must be the upstream's issuer, so we must know it.
            raise ValueError("set issuer: with openid among the scopes, each ID token's iss is checked against it")
        reserved = {"client_id", "redirect_uri", "state", "nonce", "code_challenge", "code_challenge_method"}
        if clash := reserved & set(self.extra_authorize_params):
            raise ValueError(f"extra_authorize_params may not set {sorted(clash)}")
        return self

    @property
    def is_oidc(self) -> bool:
        return "openid" in self.scopes

    def resolved_client_secret(self) -> str | None:
        """The secret, read from its file on each call so a rotated file takes effect on restart only by design."""
        if self.client_secret_file is not None:
            return Path(self.client_secret_file).read_text().strip()
        return self.client_secret.get_secret_value() if self.client_secret else None


class TokenSettings(_Group):
    """Lifetimes and signing of the tokens this server issues."""

    access_token_ttl: Duration = timedelta(hours=1)
    refresh_token_ttl: Duration = timedelta(days=30)
    """Idle lifetime: every rotation restarts it, up to `max_grant_lifetime`."""
    max_grant_lifetime: Duration = timedelta(days=90)
    """Absolute lifetime of a login; after it the user signs in at the upstream again."""
    authorization_code_ttl: Duration = timedelta(seconds=60)
    login_ttl: Duration = timedelta(minutes=10)
    """How long a consent page and the upstream login behind it may take."""
    refresh_grace_period: Duration = timedelta(seconds=10)
    """A replay of the previous refresh token within this window is a retry, not theft; 0 turns it off."""
    leeway: Duration = timedelta(seconds=30)
    algorithm: Literal["ES256", "RS256", "EdDSA"] = "ES256"
    signing_key_files: PathList = Field(default_factory=list)
    """PEM private keys: the first signs, all are published in the JWKS."""

    _split = field_validator("signing_key_files", mode="before")(_split_words)

    @model_validator(mode="after")
    def _check(self) -> TokenSettings:
        for name in ("access_token_ttl", "refresh_token_ttl", "max_grant_lifetime", "authorization_code_ttl"):
            if getattr(self, name) <= timedelta(0):
                raise ValueError(f"{name} must be positive")
        if self.authorization_code_ttl > timedelta(minutes=10):
            raise ValueError("authorization_code_ttl must be at most 10 minutes (OAuth 2.1 §4.1.2)")
        if self.refresh_grace_period < timedelta(0) or self.leeway < timedelta(0):
            raise ValueError("refresh_grace_period and leeway must not be negative")
        return self


class ConsentSettings(_Group):
    """The consent page shown before any upstream redirect (MCP security best practices, confused deputy)."""

    service_name: str = "MCP server"
    trusted_client_ids: WordList = Field(default_factory=list)
    """Pre-registered clients whose consent the operator gives on the user's behalf."""

    _split = field_validator("trusted_client_ids", mode="before")(_split_words)


class RegistrationSettings(_Group):
    """RFC 7591 dynamic client registration for MCP clients."""

    enabled: bool = True
    client_ttl: Duration = timedelta(days=30)
    """A registration unused for this long is forgotten; every successful token request renews it."""
    unused_client_ttl: Duration = timedelta(days=1)
    """A registration never used for a login is forgotten after this (at most `client_ttl`): a script can
    register clients far faster than users log in, and each would otherwise be kept for `client_ttl`."""
    max_redirect_uris: int = Field(default=10, ge=1)

    @model_validator(mode="after")
    def _check(self) -> RegistrationSettings:
        if self.unused_client_ttl <= timedelta(0):
            raise ValueError("unused_client_ttl must be positive")
        if "unused_client_ttl" in self.model_fields_set and self.unused_client_ttl > self.client_ttl:
            raise ValueError("unused_client_ttl must not exceed client_ttl")
        return self

    @property
    def new_client_ttl(self) -> timedelta:
        """How long a new registration lives before its first login: the default is capped by a shorter
        `client_ttl`, so lowering `client_ttl` alone stays a valid configuration."""
        return min(self.unused_client_ttl, self.client_ttl)


class RateLimitSettings(_Group):
    """Requests per minute per client address (and per client id at the token endpoint), counted in the
    storage, so every replica sharing a Redis counts together. The defaults are far above what a person's
    MCP client sends and far below what a script sends; see docs/security.md."""

    enabled: bool = True
    """False turns every limit off, and the storage is not asked at all (for load tests)."""
    register_per_minute: int = Field(default=20, gt=0)
    authorize_per_minute: int = Field(default=60, gt=0)
    """GET and POST together."""
    consent_per_minute: int = Field(default=30, gt=0)
    token_per_minute: int = Field(default=120, gt=0)
    token_per_client_per_minute: int = Field(default=300, gt=0)
    """Token requests naming one client id, from any address."""


class ResourceServerSettings(_Group):
    """A resource server allowed to introspect access tokens (RFC 7662 §2.1), with its own credentials."""

    client_id: str
    client_secret: SecretStr | None = None
    client_secret_file: FilePath | None = None

    @model_validator(mode="after")
    def _check(self) -> ResourceServerSettings:
        if (self.client_secret is None) == (self.client_secret_file is None):
            raise ValueError("set client_secret or client_secret_file (exactly one)")
        return self

    def resolved_secret(self) -> str:
        if self.client_secret_file is not None:
            return Path(self.client_secret_file).read_text().strip()
        assert self.client_secret is not None  # noqa: S101 - checked above
        return self.client_secret.get_secret_value()


class IntrospectionSettings(_Group):
    """RFC 7662 token introspection at `/oauth/introspect`."""

    enabled: bool = True
    resource_servers: Annotated[list[ResourceServerSettings], NoDecode] = Field(default_factory=list)
    """Resource servers that may introspect any access token for our resource, as a JSON array of
    `{"client_id": …, "client_secret": …}` (or `client_secret_file`). Registered confidential clients
    may introspect their own tokens without being listed."""

    @field_validator("resource_servers", mode="before")
    @classmethod
    def _servers(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value


class StorageSettings(_Group):
    """Where state lives: this process's memory, or Redis (standalone, TLS, unix socket, Sentinel, Cluster).

    The URL may carry a password: `repr`, `str`, JSON dumps and validation errors show it without its
    credentials (`redacted_url`); only `url` itself, for connecting, has them.
    """

    # Inputs stay out of validation errors: a rejected URL may carry a password.
    model_config = ConfigDict(hide_input_in_errors=True)

    url: str = Field(default="memory://", repr=False)
    """`memory://`; `redis://host:6379/0`, `rediss://…` (TLS), `unix:///run/redis.sock?db=0`;
    `redis+sentinel://h1:26379,h2:26379/<service>[/<db>]`; `redis+cluster://h1:7000,h2:7001`
    (`rediss+sentinel://`, `rediss+cluster://` for TLS)."""
    username: str | None = None
    """Redis ACL user; overrides one in the URL."""
    password: SecretStr | None = None
    password_file: FilePath | None = None
    sentinel_password: SecretStr | None = None
    """Password of the Sentinel processes themselves, when they require one."""
    tls_ca_file: FilePath | None = None
    key_prefix: str = "mcp-authserver"
    socket_timeout: float = Field(default=2.0, gt=0)
    """Seconds a Redis command (or a connection attempt) may take: the most a Redis stall costs a request."""
    pool_size: int = Field(default=50, ge=1)
    """Redis operations in flight at once per process; more wait for a turn (`pool_timeout`)."""
    pool_timeout: float = Field(default=2.0, gt=0)
    """Seconds an operation may wait for a turn before the request gets 503."""
    revocation_sync_interval: Duration = timedelta(milliseconds=500)
    """How often each replica refreshes its copy of the revocation list: the bound on how long a
    revocation on one replica takes to reach the others."""
    max_entries: int = Field(default=100_000, ge=100)
    """Memory backend: the bound of each record kind, so a flood of registrations cannot exhaust memory."""

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if (problem := url_problem(value)) is not None:
            raise _refused(value, problem, example_url(value))
        return value

    @field_validator("key_prefix")
    @classmethod
    def _prefix(cls, value: str) -> str:
        if not value or any(char in value for char in "{} \t\n"):
            raise ValueError("key_prefix must be non-empty, without braces or white space")
        return value

    @model_validator(mode="after")
    def _check(self) -> StorageSettings:
        if self.password is not None and self.password_file is not None:
            raise ValueError("set password or password_file, not both")
        if self.revocation_sync_interval <= timedelta(0):
            raise ValueError("revocation_sync_interval must be positive")
        return self

    @field_serializer("url", when_used="json")
    def _shown_url(self, url: str) -> str:
        return StorageURL.of(url).shown

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        yield "url", self.redacted_url
        yield from super().__repr_args__()

    @property
    def redacted_url(self) -> str:
        """The URL without the credentials it may carry (user info, `?password=`), for logs and messages."""
        return StorageURL.of(self.url).shown

    @property
    def is_memory(self) -> bool:
        return self.url.lower().startswith("memory://")

    def resolved_password(self) -> str | None:
        if self.password_file is not None:
            return Path(self.password_file).read_text().strip()
        return self.password.get_secret_value() if self.password else None


class EncryptionSettings(_Group):
    """Keys that encrypt upstream tokens and upstream client secrets at rest (AES-256-GCM)."""

    keys: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)
    """base64 of 32 random bytes each, separated by spaces or commas: the first encrypts, all decrypt."""
    key_files: PathList = Field(default_factory=list)
    """Files holding one such key each; read after `keys`."""
    allow_plaintext_reads: bool = False
    """While migrating a Redis written before a key was configured: also accept records stored in clear
    (they are sealed at their next write). Off, such records are refused: the login they belong to ends."""

    @field_validator("keys", mode="before")
    @classmethod
    def _split_keys(cls, value: Any) -> Any:
        return _split_words(value)

    _split_files = field_validator("key_files", mode="before")(_split_words)

    @model_validator(mode="after")
    def _check(self) -> EncryptionSettings:
        self.resolved_keys()  # a malformed key fails now, not at the first login
        return self

    def resolved_keys(self) -> list[bytes]:
        from mcp_authserver.storage.sealing import parse_key

        keys = [parse_key(key.get_secret_value(), source="keys") for key in self.keys]
        keys += [parse_key(Path(path).read_text(), source=str(path)) for path in self.key_files]
        return keys


class StaticClientSettings(_Group):
    """A pre-registered client (MCP authorization §5.2), e.g. for the conformance suite."""

    client_id: str
    client_secret: SecretStr | None = None
    redirect_uris: list[str]
    client_name: str | None = None
    grant_types: list[str] = Field(default_factory=lambda: ["authorization_code", "refresh_token"])
    token_endpoint_auth_method: Literal["none", "client_secret_basic", "client_secret_post"] | None = None
    """Defaults to `client_secret_basic` with a secret and `none` without."""

    @field_validator("redirect_uris")
    @classmethod
    def _redirect_uris(cls, uris: list[str]) -> list[str]:
        """http(s) URIs need a host and a usable port; others are a native app's private-use scheme
        (RFC 8252 §7.1). Checked as dynamic registration's are not: the operator may list a plain http
        URI outside loopback, which registration refuses."""
        for uri in uris:
            if uri.partition(":")[0].lower() in ("http", "https"):
                problem = web_url_problem(uri)
            else:
                problem = None if _PRIVATE_USE_SCHEME.fullmatch(uri) else "not an absolute URI without a fragment"
            if problem is not None:
                raise _refused(uri, problem, "https://app.example.com/callback")
        return uris

    @model_validator(mode="after")
    def _check(self) -> StaticClientSettings:
        method = self.token_endpoint_auth_method
        if method is not None and (method == "none") != (self.client_secret is None):
            raise ValueError("client_secret goes with a client_secret_* method, and only with one")
        if any(has_iss_parameter(uri) for uri in self.redirect_uris):
            # Every authorization response gets our own `iss` (RFC 9207 section 2): a second one is a mix-up risk.
            raise ValueError("redirect_uris must not carry an iss query parameter")
        return self


class AuthServerSettings(BaseSettings):
    """Everything the embedded authorization server needs, from `MCP_AUTHSERVER_*` variables."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        frozen=True,
        extra="ignore",
        hide_input_in_errors=True,  # secrets (a storage URL's password) stay out of the wrapped error too
    )

    issuer: str
    """This server's issuer URL (RFC 8414): scheme, host and optional path, no trailing slash."""
    resource: str
    """The protected MCP endpoint's canonical URL: the RFC 8707 audience of every token."""
    resource_name: str | None = None
    scopes_supported: WordList = Field(default_factory=lambda: ["mcp", "offline_access"])
    default_scopes: WordList = Field(default_factory=lambda: ["mcp"])
    """Granted when a client asks for no scope, and named in the 401 challenge."""
    cors_origins: WordList = Field(default_factory=lambda: ["*"])
    allow_insecure_http: bool = False
    """Accept an `http://` issuer or resource outside loopback: only when TLS terminates in front of
    this server (the public URL is still https) or on a private development network."""
    upstream: UpstreamSettings
    tokens: TokenSettings = Field(default_factory=TokenSettings)
    consent: ConsentSettings = Field(default_factory=ConsentSettings)
    registration: RegistrationSettings = Field(default_factory=RegistrationSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    rate_limit: RateLimitSettings = Field(default_factory=RateLimitSettings)
    introspection: IntrospectionSettings = Field(default_factory=IntrospectionSettings)
    encryption: EncryptionSettings = Field(default_factory=EncryptionSettings)
    clients: Annotated[list[StaticClientSettings], NoDecode] = Field(default_factory=list)

    _split = field_validator("scopes_supported", "default_scopes", "cors_origins", mode="before")(_split_words)

    @field_validator("clients", mode="before")
    @classmethod
    def _clients(cls, value: Any) -> Any:
        return json.loads(value) if isinstance(value, str) else value

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        return _canonical(value, what="issuer", example="https://mcp.example.com")

    @field_validator("resource")
    @classmethod
    def _resource(cls, value: str) -> str:
        return _canonical(value, what="resource", example="https://mcp.example.com/mcp")

    @field_validator("cors_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        """Spelt as browsers send `Origin`, which is compared exactly: `https://App.example.com/` would
        otherwise never match."""
        canonical = []
        for origin in origins:
            try:
                canonical.append(origin if origin == "*" else canonical_origin(origin))
            except ValueError as exc:
                raise _refused(origin.strip(), str(exc), "https://app.example.com") from None
        return canonical

    @model_validator(mode="after")
    def _check(self) -> AuthServerSettings:
        if unknown := set(self.default_scopes) - set(self.scopes_supported):
            raise ValueError(f"default_scopes {sorted(unknown)} are not in scopes_supported")
        for scope in self.scopes_supported:
            if not scope or any(c in scope for c in ' "\\') or not scope.isprintable():
                raise ValueError(f"scopes_supported: {scope!r} is not a valid RFC 6749 §3.3 scope token")
        if not self.allow_insecure_http:
            # OAuth 2.1 §1.5 / RFC 8414 §2: codes and tokens travel to these URLs; plain http only on loopback.
            for name, url in (("issuer", self.issuer), ("resource", self.resource)):
                if url.startswith("http://") and not is_loopback_host(urlsplit(url).hostname or ""):
                    raise ValueError(
                        f"{name} must use https outside loopback; set allow_insecure_http=true only if TLS "
                        "terminates in front of this server or on a private development network"
                    )
        return self

    def __init__(self, **values: Any) -> None:
        unknown = _unknown_variables(os.environ)
        problems = [f"{name}: {problem}" for name, problem in unknown.items()]
        try:
            super().__init__(**values)
        except ValidationError as exc:
            problems += _describe(exc, unknown=unknown)
        except (SettingsError, json.JSONDecodeError) as exc:
            problems.append(f"cannot parse an {ENV_PREFIX}* variable: {exc}")
        if problems:
            raise ConfigurationError("invalid settings:\n  " + "\n  ".join(problems)) from None


def env_name(*loc: str | int) -> str:
    """The environment variable behind a field location, e.g. ("upstream", "issuer")."""
    return ENV_PREFIX + ENV_DELIMITER.join(str(part).upper() for part in loc if isinstance(part, str))


def _describe(exc: ValidationError, *, unknown: Mapping[str, str]) -> list[str]:
    """One line per error, naming its variable; none for what an unknown variable already explains (a
    misspelt setting in a group is also pydantic's extra input, `…__ALGORITHM__X` makes `…__ALGORITHM` a dict)."""
    explained = tuple(name.upper() for name in unknown)
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        parts = [part for part in error["loc"] if not (isinstance(part, str) and part.startswith("function-"))]
        # Past a list index the location is inside a JSON value (MCP_AUTHSERVER_CLIENTS), not a variable.
        cut = next((i for i, part in enumerate(parts) if isinstance(part, int)), len(parts))
        loc = [str(part) for part in parts[:cut]]
        inside = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in parts[cut:])
        where = env_name(*loc) if loc else ENV_PREFIX + "*"
        if any(name == where or name.startswith(where + ENV_DELIMITER) for name in explained):
            continue
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden" and not inside:  # a misspelt key in a group given in code or JSON
            message = _no_such_setting(where)
        # A cross-field check fails on its group: name the variables it talks about, not the group.
        for field in _fields_at(loc):
            message = re.sub(rf"\b{field}\b", env_name(*loc, field), message)
        lines.append(f"{where} ({inside.lstrip('.')}): {message}" if inside else f"{where}: {message}")
    return lines


def _unknown_variables(environ: Mapping[str, str]) -> dict[str, str]:
    """Each `MCP_AUTHSERVER_*` variable of `environ` that names no setting, with what to say about it.

    Case-insensitive, as the settings are. A group may also be given whole, as JSON (`MCP_AUTHSERVER_UPSTREAM`).
    """
    return {
        name: _no_such_setting(name)
        for name in environ
        if name.upper().startswith(ENV_PREFIX) and not _is_setting(name.upper().removeprefix(ENV_PREFIX))
    }


def _is_setting(suffix: str) -> bool:
    known = _known_settings()
    group, delimiter, field = suffix.partition(ENV_DELIMITER)
    if not delimiter:
        return suffix in known[""]
    return bool(group) and field in known.get(group, ())


def _no_such_setting(name: str) -> str:
    suggestion = _closest(name.upper().removeprefix(ENV_PREFIX))
    return f"no such setting; did you mean {ENV_PREFIX}{suggestion}?" if suggestion else "no such setting"


def _closest(suffix: str) -> str | None:
    """The valid name nearest a misspelt one: within its group when the group is recognisable, so that
    `UPSTREAM__` shared by every name of the group does not make an unrelated one look near."""
    known = _known_settings()
    groups = [group for group in known if group]
    group, delimiter, field = suffix.partition(ENV_DELIMITER)
    if delimiter and (near_groups := difflib.get_close_matches(group, groups, n=1)):
        near = difflib.get_close_matches(field, known[near_groups[0]], n=1)
        return f"{near_groups[0]}{ENV_DELIMITER}{near[0]}" if near else None
    every = [*known[""], *(f"{group}{ENV_DELIMITER}{field}" for group in groups for field in known[group])]
    near = difflib.get_close_matches(suffix, every, n=1)
    return near[0] if near else None


@functools.cache
def _known_settings() -> dict[str, tuple[str, ...]]:
    """The settings of the top level ("") and of each group, upper case as in their variables."""
    known = {"": tuple(name.upper() for name in AuthServerSettings.model_fields)}
    for name, field in AuthServerSettings.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            known[name.upper()] = tuple(sub.upper() for sub in field.annotation.model_fields)
    return known


def _fields_at(loc: list[str]) -> list[str]:
    model: Any = AuthServerSettings
    for part in loc:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return []
        model = field.annotation
    if isinstance(model, type) and issubclass(model, BaseModel):
        return sorted(model.model_fields, key=len, reverse=True)
    return []
