"""Figure 2: one first-time validation by `auth.verifier.verify`, over a bare PyJWT verify of the same token.

Every round gets tokens the verifier has never seen, so each call is a cache miss: the signature
check, the claim checks and the cache insertion, as a new session's first request pays them. The
reference is `jwt.decode(token, public_key, algorithms=["ES256"], audience=..., issuer=...)` over
the same tokens; rounds of the two alternate.
"""

from __future__ import annotations

import gc
import time
from dataclasses import dataclass

import jwt

from benchmarks._harness import CLIENT_ID, median_ratio
from mcp_authserver.server import EmbeddedAuthServer


@dataclass(frozen=True)
class ValidationResult:
    ours_us: float
    pyjwt_us: float
    ratio: float
    ratio_of_best: float
    tokens_per_round: int
    rounds: int


def _issue(auth: EmbeddedAuthServer, count: int) -> list[str]:
    settings = auth.settings
    return [
        auth.access_tokens.issue(
            subject=f"user-{i}@example.com",
            client_id=CLIENT_ID,
            scopes=settings.default_scopes,
            audience=settings.resource,
            grant_id=f"grant-{i}",
        ).token
        for i in range(count)
    ]


def run(auth: EmbeddedAuthServer, *, rounds: int = 9, tokens: int = 2000, chunk: int = 100) -> ValidationResult:
    """Each round verifies `tokens` new tokens both ways, `chunk` at a time, the two alternating
    which goes first: a slow spell of the machine hits both alike."""
    settings = auth.settings
    resource, issuer = settings.resource, settings.issuer
    public_key = auth.key_provider.signing_key.public_key
    verify = auth.verifier.verify
    batches = [_issue(auth, tokens) for _ in range(rounds)]
    for token in _issue(auth, 200):  # warm both paths up on tokens outside the measured batches
        verify(token)
        jwt.decode(token, public_key, algorithms=["ES256"], audience=resource, issuer=issuer)

    def ours(part: list[str]) -> float:
        start = time.perf_counter()
        for token in part:
            verify(token)
        return time.perf_counter() - start

    def pyjwt(part: list[str]) -> float:
        start = time.perf_counter()
        for token in part:
            jwt.decode(token, public_key, algorithms=["ES256"], audience=resource, issuer=issuer)
        return time.perf_counter() - start

    ours_s: list[float] = []
    pyjwt_s: list[float] = []
    for batch in batches:
        gc.collect()
        ours_total = pyjwt_total = 0.0
        for i in range(0, len(batch), chunk):
            part = batch[i : i + chunk]
            if (i // chunk) % 2 == 0:
                ours_total += ours(part)
                pyjwt_total += pyjwt(part)
            else:
                pyjwt_total += pyjwt(part)
                ours_total += ours(part)
        ours_s.append(ours_total)
        pyjwt_s.append(pyjwt_total)
    return ValidationResult(
        ours_us=min(ours_s) / tokens * 1e6,
        pyjwt_us=min(pyjwt_s) / tokens * 1e6,
        ratio=median_ratio(ours_s, pyjwt_s),
        ratio_of_best=min(ours_s) / min(pyjwt_s),
        tokens_per_round=tokens,
        rounds=rounds,
    )
