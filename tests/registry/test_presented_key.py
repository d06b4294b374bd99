"""`registry.api.deps.presented_key` reads the API key as FastAPI's `Security(APIKeyHeader("X-API-Key"))`
and `Security(HTTPBearer())` did (the reference; each dependency FastAPI solves cost ~15 µs a
request): X-API-Key first, else the credentials of `Authorization: Bearer`."""

from __future__ import annotations

import asyncio

from fastapi.security import APIKeyHeader, HTTPBearer
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.requests import Request

from registry.api.deps import presented_key

_BEARER = HTTPBearer(auto_error=False)
_API_KEY = APIKeyHeader(name="X-API-Key", auto_error=False)


def _request(headers: list[tuple[str, str]]) -> Request:
    raw = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers]
    return Request({"type": "http", "method": "POST", "path": "/v1/verify", "headers": raw})


def _reference(request: Request) -> str | None:
    async def read() -> str | None:
        presented = await _API_KEY(request)
        bearer = await _BEARER(request)
        if presented is None and bearer is not None:
            presented = bearer.credentials.strip()
        return presented

    return asyncio.run(read())


_KEY = "cl_0123456789abcdef_" + "A" * 43
CASES = [
    [],
    [("Authorization", f"Bearer {_KEY}")],
    [("Authorization", f"bearer {_KEY}")],
    [("Authorization", f"BEARER   {_KEY}  ")],
    [("Authorization", "Bearer ")],
    [("Authorization", "Bearer")],
    [("Authorization", f"Basic {_KEY}")],
    [("Authorization", f" Bearer {_KEY}")],
    [("Authorization", "")],
    [("X-API-Key", _KEY)],
    [("X-API-Key", "")],
    [("X-API-Key", " spaced ")],
    [("X-API-Key", "header"), ("Authorization", f"Bearer {_KEY}")],
    [("X-API-Key", ""), ("Authorization", f"Bearer {_KEY}")],
    [("Authorization", f"Bearer {_KEY}"), ("Authorization", "Bearer second")],
    [("X-Api-Key", "mixed case name")],
]


def test_the_key_is_the_one_fastapi_security_read_in_every_listed_case():
    for headers in CASES:
        request = _request(headers)
        assert presented_key(request) == _reference(request), headers


_TEXT = st.text(st.sampled_from(" \tBbEeAaRrXx-_:=0123456789cl"), max_size=24)


@settings(max_examples=300, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["Authorization", "X-API-Key", "Cookie"]), _TEXT | _TEXT.map("Bearer {}".format)
        ),
        max_size=3,
    )
)
def test_the_key_is_the_one_fastapi_security_read_on_generated_headers(headers):
    request = _request(headers)
    assert presented_key(request) == _reference(request)
