"""AuthServerSettings read from MCP_AUTHSERVER_* environment variables."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from mcp_authserver.errors import ConfigurationError
from mcp_authserver.settings import AuthServerSettings

SECRET = "upstream-s3cr3t-DO-NOT-LOG"
CLIENT_SECRET = "static-client-s3cr3t-DO-NOT-LOG"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean environment holding only the required settings."""
    for name in list(os.environ):
        if name.upper().startswith("MCP_AUTHSERVER_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MCP_AUTHSERVER_ISSUER", "https://auth.example.com")
    monkeypatch.setenv("MCP_AUTHSERVER_RESOURCE", "https://mcp.example.com/mcp")
    monkeypatch.setenv("MCP_AUTHSERVER_UPSTREAM__ISSUER", "https://idp.example.com/oauth2/default")
    monkeypatch.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_ID", "0oa-upstream-client")
    return monkeypatch


def configuration_error() -> str:
    with pytest.raises(ConfigurationError) as caught:
        AuthServerSettings()
    return str(caught.value)


def test_the_required_variables_alone_give_a_working_configuration() -> None:
    settings = AuthServerSettings()
    assert settings.issuer == "https://auth.example.com"
    assert settings.resource == "https://mcp.example.com/mcp"
    assert settings.upstream.issuer == "https://idp.example.com/oauth2/default"
    assert settings.upstream.client_id == "0oa-upstream-client"
    assert settings.scopes_supported == ["mcp", "offline_access"]
    assert settings.default_scopes == ["mcp"]
    assert settings.tokens.algorithm == "ES256"
    assert settings.registration.enabled is True
    assert settings.storage.url == "memory://"
    assert settings.clients == []


def test_nested_groups_are_set_with_a_double_underscore(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__SUBJECT_CLAIM", "oid")
    environment.setenv("MCP_AUTHSERVER_TOKENS__ALGORITHM", "EdDSA")
    environment.setenv("MCP_AUTHSERVER_CONSENT__SERVICE_NAME", "Acme files")
    environment.setenv("MCP_AUTHSERVER_REGISTRATION__ENABLED", "false")
    environment.setenv("MCP_AUTHSERVER_REGISTRATION__MAX_REDIRECT_URIS", "3")
    environment.setenv("MCP_AUTHSERVER_STORAGE__MAX_ENTRIES", "5000")
    settings = AuthServerSettings()
    assert settings.upstream.subject_claim == "oid"
    assert settings.tokens.algorithm == "EdDSA"
    assert settings.consent.service_name == "Acme files"
    assert settings.registration.enabled is False
    assert settings.registration.max_redirect_uris == 3
    assert settings.storage.max_entries == 5000


def test_variable_names_are_case_insensitive(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("mcp_authserver_upstream__subject_claim", "email")
    assert AuthServerSettings().upstream.subject_claim == "email"


@pytest.mark.parametrize(
    "value", ["openid email", "openid,email", "openid, email", '["openid", "email"]', " openid  email "]
)
def test_a_list_is_written_as_words_or_as_a_json_array(environment: pytest.MonkeyPatch, value: str) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__SCOPES", value)
    assert AuthServerSettings().upstream.scopes == ["openid", "email"]


def test_every_list_setting_accepts_words(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    keys = [tmp_path / "a.pem", tmp_path / "b.pem"]
    for key in keys:
        key.write_text("placeholder")
    environment.setenv("MCP_AUTHSERVER_SCOPES_SUPPORTED", "mcp files:read offline_access")
    environment.setenv("MCP_AUTHSERVER_DEFAULT_SCOPES", "mcp files:read")
    environment.setenv("MCP_AUTHSERVER_CORS_ORIGINS", "https://app.example.com https://inspector.example.com")
    environment.setenv("MCP_AUTHSERVER_CONSENT__TRUSTED_CLIENT_IDS", "conformance,internal")
    environment.setenv("MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES", " ".join(str(key) for key in keys))
    settings = AuthServerSettings()
    assert settings.scopes_supported == ["mcp", "files:read", "offline_access"]
    assert settings.default_scopes == ["mcp", "files:read"]
    assert settings.cors_origins == ["https://app.example.com", "https://inspector.example.com"]
    assert settings.consent.trusted_client_ids == ["conformance", "internal"]
    assert settings.tokens.signing_key_files == keys


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("600", timedelta(minutes=10)),
        ("1.5", timedelta(seconds=1.5)),
        ("PT10M", timedelta(minutes=10)),
        ("PT1H30M", timedelta(minutes=90)),
        ("P1D", timedelta(days=1)),
    ],
)
def test_a_duration_is_written_in_seconds_or_iso_8601(
    environment: pytest.MonkeyPatch, value: str, expected: timedelta
) -> None:
    environment.setenv("MCP_AUTHSERVER_TOKENS__ACCESS_TOKEN_TTL", value)
    assert AuthServerSettings().tokens.access_token_ttl == expected


@pytest.mark.parametrize(
    ("issuer", "expected"),
    [
        ("https://auth.example.com/", "https://auth.example.com"),
        ("HTTPS://Auth.Example.COM", "https://auth.example.com"),
        ("https://auth.example.com:443/tenant/", "https://auth.example.com/tenant"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
    ],
)
def test_the_issuer_is_canonicalised(environment: pytest.MonkeyPatch, issuer: str, expected: str) -> None:
    environment.setenv("MCP_AUTHSERVER_ISSUER", issuer)
    assert AuthServerSettings().issuer == expected


def test_the_resource_is_canonicalised(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_RESOURCE", "HTTPS://MCP.Example.com:443/mcp")
    assert AuthServerSettings().resource == "https://mcp.example.com/mcp"


def test_extra_authorize_params_are_a_json_object(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__EXTRA_AUTHORIZE_PARAMS", '{"prompt": "login", "audience": "api"}')
    assert AuthServerSettings().upstream.extra_authorize_params == {"prompt": "login", "audience": "api"}


def test_static_clients_are_a_json_array(environment: pytest.MonkeyPatch) -> None:
    clients = [
        {"client_id": "conformance", "redirect_uris": ["http://localhost:3000/callback"]},
        {"client_id": "backend", "client_secret": CLIENT_SECRET, "redirect_uris": ["https://app.example.com/cb"]},
    ]
    environment.setenv("MCP_AUTHSERVER_CLIENTS", json.dumps(clients))
    public, confidential = AuthServerSettings().clients
    assert public.client_id == "conformance"
    assert public.client_secret is None
    assert public.redirect_uris == ["http://localhost:3000/callback"]
    assert confidential.client_secret is not None
    assert confidential.client_secret.get_secret_value() == CLIENT_SECRET


def test_settings_can_be_built_in_code_as_well(environment: pytest.MonkeyPatch) -> None:
    environment.delenv("MCP_AUTHSERVER_ISSUER")
    settings = AuthServerSettings(
        issuer="https://Code.Example.com/", upstream={"issuer": "https://idp.example.com", "client_id": "x"}
    )
    assert settings.issuer == "https://code.example.com"
    assert settings.upstream.client_id == "x"


# Errors name the variable to fix


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCP_AUTHSERVER_TOKENS__ALGORITHM", "HS256"),
        ("MCP_AUTHSERVER_ISSUER", "https://auth.example.com/?tenant=1"),
        ("MCP_AUTHSERVER_ISSUER", "https://auth.example.com/#x"),
        ("MCP_AUTHSERVER_ISSUER", "ftp://auth.example.com"),
        ("MCP_AUTHSERVER_RESOURCE", "/mcp"),
        ("MCP_AUTHSERVER_TOKENS__ACCESS_TOKEN_TTL", "soon"),
        ("MCP_AUTHSERVER_UPSTREAM__TIMEOUT_SECONDS", "0"),
        ("MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT_AUTH_METHOD", "private_key_jwt"),
        ("MCP_AUTHSERVER_UPSTREAM__SCOPES", '["openid"'),
        ("MCP_AUTHSERVER_UPSTREAM__EXTRA_AUTHORIZE_PARAMS", "prompt=login"),
        ("MCP_AUTHSERVER_REGISTRATION__MAX_REDIRECT_URIS", "0"),
        ("MCP_AUTHSERVER_REGISTRATION__ENABLED", "maybe"),
        ("MCP_AUTHSERVER_STORAGE__URL", "postgres://localhost:5432/db"),
        ("MCP_AUTHSERVER_STORAGE__MAX_ENTRIES", "10"),
        ("MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES", "/nonexistent/key.pem"),
        ("MCP_AUTHSERVER_TOKENS__TYPO", "1"),
        ("MCP_AUTHSERVER_CLIENTS", "not json"),
    ],
)
def test_a_bad_setting_is_a_configuration_error_naming_its_variable(
    environment: pytest.MonkeyPatch, name: str, value: str
) -> None:
    environment.setenv(name, value)
    assert name in configuration_error()


def test_without_an_upstream_client_id_the_server_registers_itself_so_the_issuer_is_needed(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.delenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_ID")
    environment.delenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET", raising=False)
    assert AuthServerSettings().upstream.client_id is None  # dynamic registration at the upstream
    environment.delenv("MCP_AUTHSERVER_UPSTREAM__ISSUER")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__AUTHORIZATION_ENDPOINT", "https://idp.example/authorize")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT", "https://idp.example/token")
    assert "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID" in configuration_error()


@pytest.mark.parametrize("name", ["MCP_AUTHSERVER_ISSUER", "MCP_AUTHSERVER_RESOURCE"])
def test_a_missing_required_setting_is_a_configuration_error_naming_its_variable(
    environment: pytest.MonkeyPatch, name: str
) -> None:
    environment.delenv(name)
    assert name in configuration_error()


def test_an_upstream_needs_an_issuer_or_both_endpoints(environment: pytest.MonkeyPatch) -> None:
    environment.delenv("MCP_AUTHSERVER_UPSTREAM__ISSUER")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__SCOPES", "read:user")  # plain OAuth 2.0, as GitHub
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__AUTHORIZATION_ENDPOINT", "https://github.com/login/oauth/authorize")
    message = configuration_error()
    assert "MCP_AUTHSERVER_UPSTREAM__ISSUER" in message
    assert "MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT" in message

    environment.setenv("MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT", "https://github.com/login/oauth/access_token")
    assert AuthServerSettings().upstream.issuer is None


def test_an_openid_connect_upstream_needs_its_issuer_even_with_every_endpoint_set(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.delenv("MCP_AUTHSERVER_UPSTREAM__ISSUER")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__AUTHORIZATION_ENDPOINT", "https://idp.example/authorize")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT", "https://idp.example/token")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__JWKS_URI", "https://idp.example/jwks")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__SCOPES", "openid email")
    message = configuration_error()
    assert "MCP_AUTHSERVER_UPSTREAM__ISSUER" in message
    assert "MCP_AUTHSERVER_UPSTREAM__SCOPES" in message

    environment.setenv("MCP_AUTHSERVER_UPSTREAM__ISSUER", "https://idp.example")
    assert AuthServerSettings().upstream.issuer == "https://idp.example"


def test_default_scopes_must_be_among_the_supported_scopes(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_DEFAULT_SCOPES", "mcp admin")
    assert "MCP_AUTHSERVER_DEFAULT_SCOPES" in configuration_error()


def test_a_supported_scope_outside_the_scope_token_grammar_is_rejected(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_SCOPES_SUPPORTED", json.dumps(["mcp", "say-hi"]))
    assert AuthServerSettings().scopes_supported == ["mcp", "say-hi"]
    environment.setenv("MCP_AUTHSERVER_SCOPES_SUPPORTED", json.dumps(["mcp", 'say"hi']))  # only the quote differs
    assert "MCP_AUTHSERVER_SCOPES_SUPPORTED" in configuration_error()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCP_AUTHSERVER_ISSUER", "http://auth.example.com"),
        ("MCP_AUTHSERVER_RESOURCE", "http://mcp.example.com/mcp"),
        ("MCP_AUTHSERVER_ISSUER", "http://10.0.0.5:8000"),
    ],
)
def test_plain_http_outside_loopback_is_refused_unless_tls_terminates_in_front(
    environment: pytest.MonkeyPatch, name: str, value: str
) -> None:
    environment.setenv(name, value)
    message = configuration_error()
    assert name in message
    assert "MCP_AUTHSERVER_ALLOW_INSECURE_HTTP" in message
    environment.setenv("MCP_AUTHSERVER_ALLOW_INSECURE_HTTP", "true")
    assert value in (AuthServerSettings().issuer, AuthServerSettings().resource)


@pytest.mark.parametrize("origin", ["http://127.0.0.1:8000", "http://localhost:8000", "http://[::1]:8000"])
def test_plain_http_on_loopback_needs_no_setting(environment: pytest.MonkeyPatch, origin: str) -> None:
    environment.setenv("MCP_AUTHSERVER_ISSUER", origin)
    environment.setenv("MCP_AUTHSERVER_RESOURCE", f"{origin}/mcp")
    assert AuthServerSettings().issuer == origin


def test_an_authorization_code_may_live_ten_minutes_but_no_longer(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_TOKENS__AUTHORIZATION_CODE_TTL", "PT10M")
    assert AuthServerSettings().tokens.authorization_code_ttl == timedelta(minutes=10)
    environment.setenv("MCP_AUTHSERVER_TOKENS__AUTHORIZATION_CODE_TTL", "601")
    assert "MCP_AUTHSERVER_TOKENS__AUTHORIZATION_CODE_TTL" in configuration_error()


@pytest.mark.parametrize(
    "name", ["ACCESS_TOKEN_TTL", "REFRESH_TOKEN_TTL", "MAX_GRANT_LIFETIME", "AUTHORIZATION_CODE_TTL"]
)
def test_a_token_lifetime_must_be_positive(environment: pytest.MonkeyPatch, name: str) -> None:
    environment.setenv(f"MCP_AUTHSERVER_TOKENS__{name}", "0")
    assert f"MCP_AUTHSERVER_TOKENS__{name}" in configuration_error()


def test_a_client_secret_and_a_client_secret_file_together_are_rejected(
    environment: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET)
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET", SECRET)
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET_FILE", str(secret_file))
    message = configuration_error()
    assert "MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET_FILE" in message
    assert "MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET " in message
    assert SECRET not in message


def test_the_client_secret_may_come_from_a_file(environment: pytest.MonkeyPatch, tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET_FILE", str(secret_file))
    assert AuthServerSettings().upstream.resolved_client_secret() == SECRET


def test_extra_authorize_params_may_not_override_the_protocol_parameters(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__EXTRA_AUTHORIZE_PARAMS", '{"redirect_uri": "https://evil.example"}')
    assert "MCP_AUTHSERVER_UPSTREAM__EXTRA_AUTHORIZE_PARAMS" in configuration_error()


def test_a_static_client_with_a_secret_cannot_use_the_none_method(environment: pytest.MonkeyPatch) -> None:
    client = {
        "client_id": "c",
        "client_secret": CLIENT_SECRET,
        "redirect_uris": ["https://a.example/cb"],
        "token_endpoint_auth_method": "none",
    }
    environment.setenv("MCP_AUTHSERVER_CLIENTS", json.dumps([client]))
    message = configuration_error()
    assert "MCP_AUTHSERVER_CLIENTS" in message
    assert CLIENT_SECRET not in message


def test_a_static_client_whose_redirect_uri_carries_iss_is_rejected(environment: pytest.MonkeyPatch) -> None:
    client = {"client_id": "c", "redirect_uris": ["https://a.example/cb", "https://a.example/cb?iss=https://x"]}
    environment.setenv("MCP_AUTHSERVER_CLIENTS", json.dumps([client]))
    assert "MCP_AUTHSERVER_CLIENTS" in configuration_error()
    client["redirect_uris"] = ["https://a.example/cb?tenant=1"]
    environment.setenv("MCP_AUTHSERVER_CLIENTS", json.dumps([client]))
    assert AuthServerSettings().clients[0].redirect_uris == ["https://a.example/cb?tenant=1"]


# Secrets stay secret


def test_secrets_are_secret_strings_kept_out_of_the_repr(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET", SECRET)
    client = {"client_id": "c", "client_secret": CLIENT_SECRET, "redirect_uris": ["https://a.example/cb"]}
    environment.setenv("MCP_AUTHSERVER_CLIENTS", json.dumps([client]))
    settings = AuthServerSettings()
    assert isinstance(settings.upstream.client_secret, SecretStr)
    assert settings.upstream.resolved_client_secret() == SECRET
    assert isinstance(settings.clients[0].client_secret, SecretStr)
    for text in (repr(settings), str(settings), repr(settings.upstream), repr(settings.clients)):
        assert SECRET not in text
        assert CLIENT_SECRET not in text


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCP_AUTHSERVER_TOKENS__ALGORITHM", "HS256"),
        ("MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET_FILE", "/nonexistent/secret"),
        ("MCP_AUTHSERVER_UPSTREAM__CLIENT_ID", ""),
        ("MCP_AUTHSERVER_CLIENTS", [{"client_id": "c", "client_secret": CLIENT_SECRET}]),
        ("MCP_AUTHSERVER_CLIENTS", [{"client_id": "c", "client_secret": CLIENT_SECRET, "redirect_uris": "x"}]),
        ("MCP_AUTHSERVER_CLIENTS", [{"client_id": "c", "client_secret": [CLIENT_SECRET], "redirect_uris": []}]),
        ("MCP_AUTHSERVER_CLIENTS", f'[{{"client_id": "c", "client_secret": "{CLIENT_SECRET}"'),
    ],
)
def test_a_configuration_error_never_shows_a_secret(
    environment: pytest.MonkeyPatch, name: str, value: str | list[object]
) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET", SECRET)
    environment.setenv(name, value if isinstance(value, str) else json.dumps(value))
    message = configuration_error()
    assert SECRET not in message
    assert CLIENT_SECRET not in message


def test_an_invalid_static_client_is_reported_under_the_one_clients_variable(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_CLIENTS", json.dumps([{"client_id": "c"}]))
    message = configuration_error()
    assert "MCP_AUTHSERVER_CLIENTS" in message
    assert "MCP_AUTHSERVER_CLIENTS__" not in message  # no such variable exists


@pytest.mark.parametrize(
    "url",
    ["memory://", "redis://localhost:6379/0", "rediss://cache.example:6380/1", "unix:///run/redis.sock?db=2",
     "redis+sentinel://s1:26379,s2:26379/mymaster", "redis+cluster://n1:7000,n2:7001"],
)  # fmt: skip
def test_every_supported_storage_url_is_accepted(url: str) -> None:
    from mcp_authserver.settings import StorageSettings

    assert StorageSettings(url=url).url == url


def test_a_storage_key_prefix_may_not_carry_a_hash_tag() -> None:
    from mcp_authserver.settings import StorageSettings

    with pytest.raises(ValidationError) as caught:
        StorageSettings(key_prefix="mcp{x}")
    assert [error["loc"] for error in caught.value.errors()] == [("key_prefix",)]


# Registration lifetimes


def test_a_new_registration_lives_a_day_until_its_first_login_by_default() -> None:
    registration = AuthServerSettings().registration
    assert registration.unused_client_ttl == timedelta(days=1)
    assert registration.new_client_ttl == timedelta(days=1)
    assert registration.client_ttl == timedelta(days=30)


def test_the_unused_registration_ttl_may_not_exceed_the_client_ttl(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_REGISTRATION__UNUSED_CLIENT_TTL", "PT2H")
    assert AuthServerSettings().registration.new_client_ttl == timedelta(hours=2)
    environment.setenv("MCP_AUTHSERVER_REGISTRATION__CLIENT_TTL", "PT1H")
    message = configuration_error()
    assert "MCP_AUTHSERVER_REGISTRATION__UNUSED_CLIENT_TTL" in message
    assert "MCP_AUTHSERVER_REGISTRATION__CLIENT_TTL" in message
    environment.setenv("MCP_AUTHSERVER_REGISTRATION__UNUSED_CLIENT_TTL", "0")
    assert "MCP_AUTHSERVER_REGISTRATION__UNUSED_CLIENT_TTL" in configuration_error()


def test_a_client_ttl_shorter_than_a_day_alone_stays_valid_and_caps_the_unused_one(
    environment: pytest.MonkeyPatch,
) -> None:
    environment.setenv("MCP_AUTHSERVER_REGISTRATION__CLIENT_TTL", "PT12H")
    assert AuthServerSettings().registration.new_client_ttl == timedelta(hours=12)


# Rate limits


def test_rate_limits_are_on_by_default_with_per_minute_limits() -> None:
    limits = AuthServerSettings().rate_limit
    assert limits.enabled is True
    assert (limits.register_per_minute, limits.authorize_per_minute, limits.consent_per_minute) == (20, 60, 30)
    assert (limits.token_per_minute, limits.token_per_client_per_minute) == (120, 300)


def test_rate_limits_are_set_and_turned_off_from_the_environment(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_RATE_LIMIT__ENABLED", "false")
    environment.setenv("MCP_AUTHSERVER_RATE_LIMIT__TOKEN_PER_CLIENT_PER_MINUTE", "1000")
    limits = AuthServerSettings().rate_limit
    assert limits.enabled is False
    assert limits.token_per_client_per_minute == 1000


@pytest.mark.parametrize("value", ["0", "-5", "1.5", "many"])
@pytest.mark.parametrize(
    "name", ["REGISTER_PER_MINUTE", "AUTHORIZE_PER_MINUTE", "CONSENT_PER_MINUTE", "TOKEN_PER_MINUTE",
             "TOKEN_PER_CLIENT_PER_MINUTE"],
)  # fmt: skip
def test_a_rate_limit_is_a_positive_integer(environment: pytest.MonkeyPatch, name: str, value: str) -> None:
    environment.setenv(f"MCP_AUTHSERVER_RATE_LIMIT__{name}", value)
    assert f"MCP_AUTHSERVER_RATE_LIMIT__{name}" in configuration_error()
