"""Settings that check themselves when they load (issue 9 item 4): every URL, and every variable's name.

Each refusal is asserted by its type, the variable it names and the secret it must not show, never by
its wording.
"""

from __future__ import annotations

import json
import os

import pytest

from mcp_authserver.errors import ConfigurationError
from mcp_authserver.settings import AuthServerSettings

SECRET = "s3cret-DO-NOT-SHOW"


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


def refusal() -> str:
    with pytest.raises(ConfigurationError) as caught:
        AuthServerSettings()
    return str(caught.value)


# URLs: each kind refused for a bad scheme, a missing host and a bad port, with the secret masked

WEB_URL_SETTINGS = [
    "MCP_AUTHSERVER_ISSUER",
    "MCP_AUTHSERVER_RESOURCE",
    "MCP_AUTHSERVER_UPSTREAM__ISSUER",
    "MCP_AUTHSERVER_UPSTREAM__AUTHORIZATION_ENDPOINT",
    "MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT",
    "MCP_AUTHSERVER_UPSTREAM__USERINFO_ENDPOINT",
    "MCP_AUTHSERVER_UPSTREAM__JWKS_URI",
    "MCP_AUTHSERVER_UPSTREAM__REVOCATION_ENDPOINT",
    "MCP_AUTHSERVER_CORS_ORIGINS",
]
BAD_WEB_URLS = {
    "bad scheme": f"ftp://user:{SECRET}@idp.example.com",
    "no scheme": "idp.example.com",
    "missing host": f"https://user:{SECRET}@:8443",
    "empty host": "https:///path",
    "port not a number": f"https://user:{SECRET}@idp.example.com:https",
    "port out of range": f"https://user:{SECRET}@idp.example.com:65536",
    "port zero": "https://idp.example.com:0",
    "unclosed IPv6": f"https://user:{SECRET}@[::1",
    "white space": "https://idp.example.com/a b",
}


@pytest.mark.parametrize("problem", list(BAD_WEB_URLS))
@pytest.mark.parametrize("name", WEB_URL_SETTINGS)
def test_a_bad_web_url_is_refused_at_load_naming_its_variable_without_its_secret(
    environment: pytest.MonkeyPatch, name: str, problem: str
) -> None:
    environment.setenv(name, BAD_WEB_URLS[problem])
    message = refusal()
    assert name in message
    assert SECRET not in message


@pytest.mark.parametrize("name", WEB_URL_SETTINGS[2:-1])
def test_an_upstream_url_with_credentials_is_refused_and_they_are_not_shown(
    environment: pytest.MonkeyPatch, name: str
) -> None:
    environment.setenv(name, f"https://client:{SECRET}@idp.example.com/oauth2/x")
    message = refusal()
    assert name in message
    assert SECRET not in message
    assert "https://***@idp.example.com/oauth2/x" in message  # what helps the operator stays


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MCP_AUTHSERVER_UPSTREAM__ISSUER", "https://idp.example.com/?tenant=1"),
        ("MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT", "https://idp.example.com/token#x"),
        ("MCP_AUTHSERVER_CORS_ORIGINS", "https://app.example.com/app"),
        ("MCP_AUTHSERVER_CORS_ORIGINS", "null"),
        ("MCP_AUTHSERVER_CORS_ORIGINS", "https://app.example.com https://app.example.com:99999"),
    ],
)
def test_what_a_url_setting_may_not_have_is_refused(environment: pytest.MonkeyPatch, name: str, value: str) -> None:
    environment.setenv(name, value)
    assert name in refusal()


def test_a_bad_value_not_written_as_a_url_is_not_shown(environment: pytest.MonkeyPatch) -> None:
    """A value without `://` could be a secret pasted into the wrong variable."""
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT", SECRET)
    message = refusal()
    assert "MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT" in message
    assert SECRET not in message


STORAGE_URLS = {
    "redis bad scheme": f"mongodb://:{SECRET}@db.example.com:27017/0",
    "redis no scheme": "localhost:6379",
    "redis missing host": f"redis://:{SECRET}@:6379/0",
    "redis bad port": f"redis://:{SECRET}@cache.example.com:99999/0",
    "redis port zero": "redis://cache.example.com:0/0",
    "redis port not a number": f"redis://:{SECRET}@cache.example.com:six/0",
    "redis bad database": f"redis://:{SECRET}@cache.example.com:6379/first",
    "redis nested database": "redis://cache.example.com:6379/1/2",
    "redis bad database in the query": f"redis://cache.example.com:6379?db=first&password={SECRET}",
    "redis two hosts": "redis://a.example.com:6379,b.example.com:6379/0",
    "rediss missing host": f"rediss://:{SECRET}@/0",
    "rediss bad port": f"rediss://cache.example.com:-1/0?password={SECRET}",
    "rediss bad database": "rediss://cache.example.com:6380/zero",
    "unix with a host": "unix://run/redis.sock",
    "unix without a path": f"unix://:{SECRET}@",
    "unix bad database": f"unix:///run/redis.sock?db=one&password={SECRET}",
    "sentinel missing host": f"redis+sentinel://:{SECRET}@/mymaster",
    "sentinel host without its port": "redis+sentinel://s1.example.com:26379,s2.example.com/mymaster",
    "sentinel bad port": f"redis+sentinel://:{SECRET}@s1.example.com:70000/mymaster",
    "sentinel without a service": f"redis+sentinel://:{SECRET}@s1.example.com:26379",
    "sentinel bad database": "rediss+sentinel://s1.example.com:26379/mymaster/first",
    "sentinel bad database in the query": f"redis+sentinel://s1.example.com:26379/mymaster?db=x&password={SECRET}",
    "cluster missing host": "redis+cluster://",
    "cluster bad port": f"rediss+cluster://:{SECRET}@n1.example.com:7000,n2.example.com:0",
    "cluster database other than 0": "redis+cluster://n1.example.com:7000/1",
    "cluster bad database": "redis+cluster://n1.example.com:7000?db=x",
}


@pytest.mark.parametrize("case", list(STORAGE_URLS))
def test_a_bad_storage_url_is_refused_at_load_naming_its_variable_without_its_password(
    environment: pytest.MonkeyPatch, case: str
) -> None:
    environment.setenv("MCP_AUTHSERVER_STORAGE__URL", STORAGE_URLS[case])
    message = refusal()
    assert "MCP_AUTHSERVER_STORAGE__URL" in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "uri", ["/callback", "https:///callback", "https://app.example.com:0/cb", f"https://u:{SECRET}@app.example.com/cb"]
)
def test_a_bad_redirect_uri_of_a_static_client_is_refused_under_the_clients_variable(
    environment: pytest.MonkeyPatch, uri: str
) -> None:
    client = {"client_id": "c", "redirect_uris": ["https://app.example.com/cb", uri]}
    environment.setenv("MCP_AUTHSERVER_CLIENTS", json.dumps([client]))
    message = refusal()
    assert "MCP_AUTHSERVER_CLIENTS" in message
    assert SECRET not in message


# What was valid stays valid


@pytest.mark.parametrize(
    "url",
    [
        "memory://",
        "redis://localhost",
        "redis://localhost:6379/0",
        "redis://:pass@127.0.0.1:6379/0?ssl_cert_reqs=none&password=x",
        "redis://[::1]:6379/15/",
        "REDIS://Cache.Example.com:6379/0",
        "rediss://cache.example.com:6380/1",
        "unix:///run/redis.sock?db=2",
        "unix://localhost/run/redis.sock",
        "unix://:pass@/run/redis.sock",
        "redis+sentinel://s1:26379,s2:26379/mymaster",
        "redis+sentinel://:pass@s1:26379,[::1]:26379/mymaster/3",
        "rediss+sentinel://s1:26379/mymaster?db=1",
        "redis+cluster://n1:7000,n2:7001",
        "rediss+cluster://n1:7000/0",
    ],
)
def test_every_kind_of_storage_url_still_loads(environment: pytest.MonkeyPatch, url: str) -> None:
    environment.setenv("MCP_AUTHSERVER_STORAGE__URL", url)
    assert AuthServerSettings().storage.url == url


def test_upstream_urls_keep_their_query_port_and_loopback_http(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__ISSUER", "https://idp.example.com/")  # Auth0 ends with a slash
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__AUTHORIZATION_ENDPOINT", "https://idp.example.com:8443/a?p=1")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__TOKEN_ENDPOINT", " http://127.0.0.1:8001/token ")
    upstream = AuthServerSettings().upstream
    assert upstream.issuer == "https://idp.example.com/"
    assert upstream.authorization_endpoint == "https://idp.example.com:8443/a?p=1"
    assert upstream.token_endpoint == "http://127.0.0.1:8001/token"


def test_an_empty_upstream_url_variable_still_means_unset(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__JWKS_URI", "")
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__REVOCATION_ENDPOINT", " ")
    upstream = AuthServerSettings().upstream
    assert upstream.jwks_uri is None
    assert upstream.revocation_endpoint is None


def test_cors_origins_are_spelt_as_browsers_send_them(environment: pytest.MonkeyPatch) -> None:
    origins = "* HTTPS://App.Example.com/ http://localhost:6274 https://a.example.com:443 chrome-extension://abcdef"
    environment.setenv("MCP_AUTHSERVER_CORS_ORIGINS", origins)
    assert AuthServerSettings().cors_origins == [
        "*", "https://app.example.com", "http://localhost:6274", "https://a.example.com", "chrome-extension://abcdef"
    ]  # fmt: skip


def test_a_static_client_may_keep_a_private_use_scheme_or_plain_http(environment: pytest.MonkeyPatch) -> None:
    uris = ["com.example.app:/oauth2redirect", "cursor://anysphere.cursor-mcp/oauth/callback", "http://10.0.0.5/cb"]
    environment.setenv("MCP_AUTHSERVER_CLIENTS", json.dumps([{"client_id": "c", "redirect_uris": uris}]))
    assert AuthServerSettings().clients[0].redirect_uris == uris


# Unknown variables


@pytest.mark.parametrize(
    ("name", "suggested"),
    [
        ("MCP_AUTHSERVER_ALLOW_INSECURE_HTP", "MCP_AUTHSERVER_ALLOW_INSECURE_HTTP"),
        ("MCP_AUTHSERVER_ISUER", "MCP_AUTHSERVER_ISSUER"),
        ("MCP_AUTHSERVER_CORS_ORIGIN", "MCP_AUTHSERVER_CORS_ORIGINS"),
        ("MCP_AUTHSERVER_UPSTREAM__CLIENTID", "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID"),
        ("MCP_AUTHSERVER_STORAGE__URLS", "MCP_AUTHSERVER_STORAGE__URL"),
        ("MCP_AUTHSERVER_ENCRYPTION__KEY", "MCP_AUTHSERVER_ENCRYPTION__KEYS"),
        ("MCP_AUTHSERVER_RATE_LIMITS__ENABLED", "MCP_AUTHSERVER_RATE_LIMIT__ENABLED"),
        ("MCP_AUTHSERVER_UPSTREAM_CLIENT_SECRET", "MCP_AUTHSERVER_UPSTREAM__CLIENT_SECRET"),
        ("mcp_authserver_tokens__signing_key_file", "MCP_AUTHSERVER_TOKENS__SIGNING_KEY_FILES"),
    ],
)
def test_a_misspelt_variable_is_refused_with_the_name_it_was_meant_to_be(
    environment: pytest.MonkeyPatch, name: str, suggested: str
) -> None:
    environment.setenv(name, SECRET)
    message = refusal()
    assert name in message
    assert suggested in message
    assert SECRET not in message  # the value of a variable that is no setting may well be a secret


def test_every_unknown_variable_and_every_bad_value_is_reported_at_once(environment: pytest.MonkeyPatch) -> None:
    environment.setenv("MCP_AUTHSERVER_UPSTREAM__CLIENTID", "x")
    environment.setenv("MCP_AUTHSERVER_ISUER", "x")
    environment.setenv("MCP_AUTHSERVER_STORAGE__URL", "redis://cache.example.com:0/0")
    message = refusal()
    for name in ("MCP_AUTHSERVER_UPSTREAM__CLIENTID", "MCP_AUTHSERVER_ISUER", "MCP_AUTHSERVER_STORAGE__URL"):
        assert name in message


def test_a_misspelt_key_of_a_group_given_in_code_gets_a_suggestion_too() -> None:
    with pytest.raises(ConfigurationError) as caught:
        AuthServerSettings(upstream={"issuer": "https://idp.example.com", "clientid": "x"})
    assert "MCP_AUTHSERVER_UPSTREAM__CLIENT_ID" in str(caught.value)


def test_a_correct_configuration_loads_beside_unrelated_variables(environment: pytest.MonkeyPatch) -> None:
    for name in ("MCP_AUTHSERVERX", "MCP_AUTH_SERVER_ISSUER", "OTHER_MCP_AUTHSERVER_ISSUER", "REDIS_URL", "MCP_PORT"):
        environment.setenv(name, "anything")
    environment.setenv("mcp_authserver_consent__service_name", "Acme")  # names are case-insensitive
    environment.setenv("MCP_AUTHSERVER_STORAGE", json.dumps({"max_entries": 500}))  # a group, whole, as JSON
    settings = AuthServerSettings()
    assert settings.consent.service_name == "Acme"
    assert settings.storage.max_entries == 500
