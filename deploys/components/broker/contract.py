"""The broker's part of an app entry: a Redis of the app's own."""

from __future__ import annotations

from typing import Any

from pydantic import Field, field_validator

from deploys.model.schema import SIZE_RE, Model, Part, form, nested

# What the deploy sets in the environment of an app with a broker, each the URL of its Redis.
ENV = ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND")

FORMS = {
    "broker": "must be true, false or {\"maxmemory\": SIZE}",
    "maxmemory": "must look like 64M, 512K or 1G",
}


class BrokerEntry(Model):
    maxmemory: str = Field(
        "64M",
        description="Memory the app's Redis may use; past it, writes fail rather than tasks vanish.",
    )

    @field_validator("maxmemory")
    @classmethod
    def _size(cls, value: str) -> str:
        return form(SIZE_RE, value, "maxmemory", FORMS)


class BrokerPart(Part):
    FORMS = FORMS
    ENTRIES = ((BrokerEntry, "`broker`", "An app's `broker` as a dict."),)

    broker: bool | BrokerEntry = Field(
        False,
        description='true or {"maxmemory": SIZE}: a Redis of the app\'s own on a unix socket only it can open; '
                    "REDIS_URL, CELERY_BROKER_URL and CELERY_RESULT_BACKEND point at it.",
    )

    @field_validator("broker", mode="before")
    @classmethod
    def _broker(cls, value: Any) -> Any:
        return value if isinstance(value, bool) else nested(BrokerEntry, value, FORMS)

    @property
    def maxmemory(self) -> str | None:
        """Its Redis's memory; None: the app has no broker."""
        if self.broker is False:
            return None
        return self.broker.maxmemory if isinstance(self.broker, BrokerEntry) else BrokerEntry().maxmemory

    def reserved_env(self) -> set[str]:
        return set(ENV) if self.broker else set()

    def on_several_servers(self) -> tuple[str, str] | None:
        if self.broker:
            return "broker", ("a broker on each app server would split its tasks between them; an app on several "
                              "app servers cannot have one yet")
        return None
