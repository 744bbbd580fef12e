"""GET|POST /oauth/authorize and POST /oauth/consent: the browser's first steps of a login."""

from __future__ import annotations

from typing import ClassVar, Literal

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver.errors import OAuthError, StorageError
from mcp_authserver.http import consent_page
from mcp_authserver.http.authorization_limits import (
    MAX_AUTHORIZATION_REQUEST,
    check_parameter_sizes,
    check_query_length,
)
from mcp_authserver.http.browser import BrowserBinding
from mcp_authserver.http.render import error_page, redirect
from mcp_authserver.http.requests import query_params, read_form
from mcp_authserver.services.authorization import (
    AuthorizationService,
    GoUpstream,
    Outcome,
    Refused,
    ShowConsent,
    ToClient,
)

__all__ = ["AuthorizeEndpoint", "ConsentEndpoint", "render_outcome"]


class AuthorizeEndpoint:
    errors: ClassVar[Literal["json", "page"]] = "page"

    def __init__(
        self, authorization: AuthorizationService, browser: BrowserBinding, *, service_name: str, consent_url: str
    ) -> None:
        self._authorization = authorization
        self._browser = browser
        self._service_name = service_name
        self._consent_url = consent_url

    async def handle(self, request: Request) -> Response:
        if request.method == "GET":
            check_query_length(request.scope.get("query_string", b""))
            params = query_params(request)
        else:
            params = await read_form(request, limit=MAX_AUTHORIZATION_REQUEST)
        check_parameter_sizes(params)
        resolved = await self._authorization.resolve_client(params.get("client_id"), params.get("redirect_uri"))
        browser_id, is_new = self._browser.ensure(request)
        known_browser = None if is_new else browser_id
        client_id = resolved.client.client_id
        try:
            auth_request = self._authorization.validate(params, resolved)
        except OAuthError as exc:
            if not await self._authorization.may_redirect_errors(client_id, known_browser):
                raise  # shown on our page
            outcome: Outcome = self._authorization.error_to_client(resolved.redirect_uri, exc, params.get("state"))
        else:
            try:
                outcome = await self._authorization.begin(resolved.client, auth_request, browser_id)
            except StorageError as exc:
                if not await self._authorization.may_redirect_errors(client_id, known_browser):
                    raise  # a 503 page
                outcome = self._authorization.unavailable(auth_request, exc)
        response = render_outcome(outcome, status=302, service_name=self._service_name, consent_url=self._consent_url)
        # Set on every authorization request, so the cookie outlives the login it is starting.
        self._browser.set(response, browser_id)
        return response


class ConsentEndpoint:
    errors: ClassVar[Literal["json", "page"]] = "page"

    def __init__(self, authorization: AuthorizationService, browser: BrowserBinding) -> None:
        self._authorization = authorization
        self._browser = browser

    async def handle(self, request: Request) -> Response:
        params = await read_form(request)
        outcome = await self._authorization.consent(
            params.get("ticket"), self._browser.current(request), approved=params.get("decision") == "approve"
        )
        # 303 turns the browser's POST into a GET at the next stop (RFC 9700 §4.12: never 307).
        return render_outcome(outcome, status=303)


def render_outcome(outcome: Outcome, *, status: int, service_name: str = "", consent_url: str = "") -> Response:
    if isinstance(outcome, ShowConsent):
        return consent_page.render(
            service_name=service_name,
            client=outcome.client,
            request=outcome.request,
            action=consent_url,
            ticket=outcome.ticket,
        )
    if isinstance(outcome, GoUpstream):
        return redirect(outcome.url, status)
    if isinstance(outcome, ToClient):
        return redirect(outcome.location, status)
    assert isinstance(outcome, Refused)  # noqa: S101 - the last kind of outcome
    return error_page(outcome.title, outcome.message, outcome.status)
