"""POST /oauth/token: the authorization_code and refresh_token grants (OAuth 2.1 §3.2)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from mcp_authserver.clients import ClientCredentials
from mcp_authserver.errors import InvalidRequestError, UnauthorizedClientError, UnsupportedGrantTypeError
from mcp_authserver.grants import TokenResponse
from mcp_authserver.http.context import EndpointContext
from mcp_authserver.http.rate_limit import RateLimiter
from mcp_authserver.http.requests import read_form
from mcp_authserver.http.responses import json_response


class TokenEndpoint:
    def __init__(self, ctx: EndpointContext, limiter: RateLimiter | None = None) -> None:
        self.ctx = ctx
        self.limiter = limiter

    async def __call__(self, request: Request) -> Response:
        params = await read_form(request)
        grant_type = params.get("grant_type")
        if not grant_type:
            raise InvalidRequestError("grant_type is required")
        if grant_type not in ("authorization_code", "refresh_token"):
            raise UnsupportedGrantTypeError(f"grant_type {grant_type[:64]!r} is not supported")
        credentials = ClientCredentials.parse(
            request.headers.get("authorization"), params.get("client_id"), params.get("client_secret")
        )
        # Per client id, from any address: before any authentication work is spent on it.
        if self.limiter is not None and (refusal := await self.limiter.refuse_client(credentials.client_id)):
            return refusal
        client = await self.ctx.clients.authenticate(credentials)
        if grant_type not in client.grant_types:
            raise UnauthorizedClientError(f"this client is not registered for {grant_type}")

        response: TokenResponse
        if grant_type == "authorization_code":
            response = await self.ctx.grants.redeem_code(
                client,
                code=params.require("code"),
                redirect_uri=params.get("redirect_uri"),
                code_verifier=params.get("code_verifier"),
                resources=params.all("resource"),
            )
        else:
            response = await self.ctx.grants.refresh(
                client,
                refresh_token=params.require("refresh_token"),
                scope=params.get("scope"),
                resources=params.all("resource"),
            )
        await self.ctx.clients.renew(client)
        return json_response(response.as_json())
