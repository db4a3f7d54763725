"""Nginx's part of an app entry: what the app's site sends and accepts."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator

from deploys.model.schema import RELATIVE_RE, SIZE_RE, Model, Part, Problem, entry, form

# A response header Nginx adds: a token for its name, and a value Nginx writes as it is (no quote,
# backslash, variable, end of directive or block).
HEADER_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
HEADER_VALUE_RE = re.compile(r"[\x20-\x7e]{1,1024}")
HEADER_VALUE_REFUSED = set('"\\$;{}')
# Headers djangohost sets itself (its tls and static files settings).
RESERVED_HEADERS = {"strict-transport-security", "cache-control", "content-length", "content-type", "server"}

# Basic authentication: a user name, and a crypt(3) hash Nginx checks (libxcrypt: bcrypt, SHA-512,
# SHA-256, yescrypt; Apache's MD5), never a password.
USER_RE = re.compile(r"[A-Za-z0-9._@-]{1,64}")
HASH_RE = re.compile(r"\$(2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}|[56]\$(rounds=[0-9]{1,9}\$)?[./A-Za-z0-9]{1,16}\$"
                     r"[./A-Za-z0-9]{43,86}|y\$[./A-Za-z0-9]{1,64}\$[./A-Za-z0-9]{1,64}\$[./A-Za-z0-9]{43}|"
                     r"apr1\$[./A-Za-z0-9]{1,8}\$[./A-Za-z0-9]{22})")
# A URL path prefix basic authentication protects, as Nginx's map matches it.
PREFIX_RE = re.compile(r"/[A-Za-z0-9._~/-]{0,200}")
REALM_RE = re.compile(r"[A-Za-z0-9 ._,:()-]{1,64}")
# Seconds Nginx waits between two reads from an ASGI app (proxy_read_timeout) unless its entry
# says: a WebSocket or a stream quiet for longer is closed (clients reconnect). A WSGI app keeps
# Nginx's 60 s unless its entry sets `read_timeout`.
ASGI_READ_TIMEOUT = 3600
# A day: the longest read_timeout.
MAX_READ_TIMEOUT = 86400

FORMS = {
    "client_max_body_size": "must look like 10m, 512k or 1g",
    "canonical": "must be true or false",
    "maintenance_allow": "must be a list of addresses or networks, such as 203.0.113.7 or 2001:db8::/32",
    "error_pages": "must be a directory inside the source (letters, digits, . _ / + -)",
    "allow": "must be a dict with keys addresses (a list of addresses or networks) and paths",
    "addresses": "must be a list of addresses or networks, such as 203.0.113.7 or 2001:db8::/32",
    "basic_auth": "must be a dict with keys users ({name: password hash}), paths and realm",
    "users": "must be a dict of user names (letters, digits, . _ @ -) to password hashes (htpasswd -B, mkpasswd)",
    "paths": "must be a list of URL path prefixes such as /admin/",
    "realm": "must be letters, digits, spaces and . , : ( ) - _",
    "headers": "must be a dict of header names (letters, digits, -) to values of printable characters without "
               "\" \\ $ ; { }",
    "read_timeout": f"must be a whole number of seconds from 1 to {MAX_READ_TIMEOUT}",
}


def networks(value: list[str], field: str) -> list[str]:
    """Addresses or networks, as Nginx's geo reads them: no zone id, a prefix length in digits."""
    for network in value:
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise ValueError(f"{network!r} {FORMS[field]}") from None
        if "%" in network or "/" in network and not network.split("/")[1].isdigit():
            raise ValueError(f"{network!r} {FORMS[field]}")
    return value


def prefixes(cls: type, value: list[str]) -> list[str]:
    """A field validator: URL path prefixes, as Nginx's map matches them."""
    for prefix in value:
        form(PREFIX_RE, prefix, "paths", FORMS)
    return value


class AllowEntry(Model):
    """Who may reach the app (or paths of it) at all: addresses and networks."""

    addresses: list[str] = Field(description="Addresses or networks, such as 203.0.113.7 or 10.0.0.0/8.")
    paths: list[str] = Field(default_factory=list,
                             description="URL path prefixes it guards, such as /admin/; default the whole site.")

    @field_validator("addresses")
    @classmethod
    def _addresses(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("names no address")
        return networks(value, "addresses")

    _paths = field_validator("paths")(prefixes)


class BasicAuthEntry(Model):
    """Who may see the app (or paths of it): user names and their password hashes."""

    users: dict[str, str] = Field(
        description="User names to password hashes, as `htpasswd -nB NAME` or `mkpasswd -m bcrypt` print them; "
                    "never a password. Masked wherever shown, like secrets.")
    paths: list[str] = Field(default_factory=list,
                             description="URL path prefixes it protects, such as /admin/; default the whole site.")
    realm: str = Field("Restricted", description="What the browser's login prompt says.")

    @field_validator("users")
    @classmethod
    def _users(cls, value: dict[str, str]) -> dict[str, str]:
        if not value:
            raise ValueError("names no user")
        for name, hashed in value.items():
            if not USER_RE.fullmatch(name):
                raise ValueError(f"{name!r} {FORMS['users']}")
            if not HASH_RE.fullmatch(hashed):
                raise ValueError(f"{name}: not a password hash (bcrypt, SHA-512, SHA-256, yescrypt or apr1; make "
                                 "one with htpasswd -nB NAME): a password is never written on the host")
        return value

    _paths = field_validator("paths")(prefixes)

    @field_validator("realm")
    @classmethod
    def _realm(cls, value: str) -> str:
        return form(REALM_RE, value, "realm", FORMS)


class NginxPart(Part):
    FORMS = FORMS
    ENTRIES = ((BasicAuthEntry, "`basic_auth`", "An app's `basic_auth`."),
               (AllowEntry, "`allow`", "An app's `allow`."))

    client_max_body_size: str = Field("10m", json_schema_extra={"pattern": f"^{SIZE_RE.pattern}$"},
                                      description="Nginx's upload limit for the app, such as 10m.")
    canonical: bool = Field(
        False, description="true: the app's other domains answer 301 to its first, path and query kept (over https "
                           "with tls).")
    basic_auth: BasicAuthEntry | None = Field(
        None, description="A login for the whole site or for paths of it (a staging site, /admin/): "
                          '{"users": {"ann": "$2y$05$..."}, "paths": ["/admin/"]}. The host\'s own checks pass '
                          "without it.")
    allow: AllowEntry | None = Field(
        None, description="Only these addresses reach the whole site, or paths of it (others get 403): "
                          '{"addresses": ["203.0.113.0/24"], "paths": ["/admin/"]}. Behind a load balancer, the '
                          "address it saw. The host's own checks pass.")
    error_pages: str | None = Field(
        None, description="A directory of the source (from its root) with the app's own 502.html, 503.html and "
                          "504.html: Nginx sends them when the app does not answer (502, 504) and in maintenance "
                          "(503). Published with each release, as its static files are.")
    maintenance_allow: list[str] = Field(
        default_factory=list,
        description="Addresses or networks that still reach the app while it is in maintenance "
                    "(deploys/maintenance.py), such as the office's.")
    headers: dict[str, str] = Field(
        default_factory=dict,
        description="Response headers Nginx adds to every answer of the app, its static and media files included: "
                    '{"X-Frame-Options": "DENY", "Referrer-Policy": "same-origin"}.',
    )
    read_timeout: int | None = Field(
        None, ge=1, le=MAX_READ_TIMEOUT,
        description=f"Seconds Nginx waits between two reads from the app before it closes the connection (a quiet "
                    f"WebSocket or stream); default {ASGI_READ_TIMEOUT} with server asgi, Nginx's 60 otherwise.",
    )

    def proxy_read_timeout(self, asgi: bool) -> int | None:
        """Nginx's proxy_read_timeout for the app: its read_timeout, or for an ASGI app an hour;
        None: Nginx's own."""
        return self.read_timeout or (ASGI_READ_TIMEOUT if asgi else None)

    @field_validator("basic_auth", mode="before")
    @classmethod
    def _basic_auth(cls, value: Any) -> Any:
        return value if value is None else entry(BasicAuthEntry, value, "basic_auth", FORMS)

    @field_validator("allow", mode="before")
    @classmethod
    def _allow(cls, value: Any) -> Any:
        return value if value is None else entry(AllowEntry, value, "allow", FORMS)

    @field_validator("maintenance_allow")
    @classmethod
    def _maintenance_allow(cls, value: list[str]) -> list[str]:
        return networks(value, "maintenance_allow")

    @field_validator("error_pages")
    @classmethod
    def _error_pages(cls, value: str | None) -> str | None:
        return value if value is None else form(RELATIVE_RE, value.strip("/"), "error_pages", FORMS)

    @model_validator(mode="after")
    def _pages_in_source(self) -> NginxPart:
        source = getattr(self, "source", None)  # the app entry's, beside this part
        if self.error_pages and isinstance(source, str) and not (Path(source) / self.error_pages).is_dir():
            raise Problem("error_pages", f"{self.error_pages} is not a directory of {source}")
        return self

    @model_validator(mode="after")
    def _canonical(self) -> NginxPart:
        first = (getattr(self, "domains", None) or [""])[0]  # the app entry's, beside this part
        if self.canonical and first.startswith("*."):
            raise Problem("canonical", f"the first domain, {first}, is a wildcard: name a host to redirect to first")
        return self

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
