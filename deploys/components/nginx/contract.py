"""Nginx's part of an app entry: what the app's site sends and accepts."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from deploys.model.schema import SIZE_RE, Part, form

# A response header Nginx adds: a token for its name, and a value Nginx writes as it is (no quote,
# backslash, variable, end of directive or block).
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
HEADER_VALUE_RE = re.compile(r"[\x20-\x7e]{1,1024}")
HEADER_VALUE_REFUSED = set('"\\$;{}')
# Headers djangohost sets itself (its tls and static files settings).
RESERVED_HEADERS = {"strict-transport-security", "cache-control", "content-length", "content-type", "server"}

FORMS = {
    "client_max_body_size": "must look like 10m, 512k or 1g",
    "headers": "must be a dict of header names (letters, digits, -) to values of printable characters without "
               "\" \\ $ ; { }",
}


class NginxPart(Part):
    FORMS = FORMS

    client_max_body_size: str = Field("10m", json_schema_extra={"pattern": f"^{SIZE_RE.pattern}$"},
                                      description="Nginx's upload limit for the app, such as 10m.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Response headers Nginx adds to every answer of the app, its static and media files included: "
                    '{"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}.',
    )

    @field_validator("client_max_body_size")
    @classmethod
    def _size(cls, value: str) -> str:
        return form(SIZE_RE, value, "client_max_body_size", FORMS)

    @field_validator("headers", mode="before")
    @classmethod
    def _headers(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            raise ValueError(f"{value!r} {FORMS['headers']}")
        for name, header in value.items():
            if not isinstance(name, str) or not HEADER_NAME_RE.fullmatch(name):
                raise ValueError(f"{name!r} is not a header name (letters, digits and -)")
            if name.lower() in RESERVED_HEADERS:
                raise ValueError(f"{name} is sent by djangohost itself (its tls and static files settings)")
            if (not isinstance(header, str) or not HEADER_VALUE_RE.fullmatch(header)
                    or HEADER_VALUE_REFUSED & set(header)):
                raise ValueError(f"{name}: {header!r} must be printable characters without \" \\ $ ; {{ }}")
        return value
