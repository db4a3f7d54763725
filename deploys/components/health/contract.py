"""The health checks' part of an app entry: what they ask, and for how long."""

from __future__ import annotations

import math

from pydantic import Field, field_validator

from deploys.model.schema import URL_PATH_RE, Part, form

FORMS = {
    "health_path": "must be a URL path starting with / (letters, digits and the characters of a URL)",
    "health_timeout": "must be a finite number of seconds above 0",
}


class HealthPart(Part):
    FORMS = FORMS

    health_path: str = Field(
        "/",
        description="What the candidate check, the health gate and the status view ask on each domain; redirects "
                    "within the app's own origins are followed.",
    )
    health_timeout: float = Field(
        60, gt=0,
        description="Seconds a new or (re)started release is given to answer at all; answers that are wrong fail it "
                    "after a few tries.",
    )

    @field_validator("health_path")
    @classmethod
    def _path(cls, value: str) -> str:
        return form(URL_PATH_RE, value, "health_path", FORMS)

    @field_validator("health_timeout")
    @classmethod
    def _finite(cls, value: float) -> float:
        if not value < math.inf:
            raise ValueError(f"{value!r} {FORMS['health_timeout']}")
        return value
