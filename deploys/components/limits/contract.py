"""The limits' part of an app entry: what its processes together may use."""

from __future__ import annotations

import re
from typing import Any

from pydantic import Field, field_validator

from deploys.model.schema import Model, Part, entry, form

# A size systemd reads, with its unit: 512M, 1G.
LIMIT_SIZE_RE = re.compile(r"[0-9]+[KMG]")
PERCENT_RE = re.compile(r"[0-9]+%")

FORMS = {
    "limits": "must be a dict with keys memory (such as 512M), cpu (such as 50%) and tasks",
    "memory": "must be a size in K, M or G, such as 512M",
    "cpu": "must be a percentage of one core, such as 50% (200%: two cores)",
    "tasks": "must be a whole number of at least 1",
}


class LimitsEntry(Model):
    """What the processes of an app (web, workers and jobs together) may use, at most."""

    memory: str | None = Field(
        None,
        description="At most this much memory for the app's processes together (systemd's MemoryMax), such as 512M.",
    )
    cpu: str | None = Field(
        None,
        description="At most this share of one core (CPUQuota), such as 50% (200%: two cores).",
    )
    tasks: int | None = Field(None, ge=1, description="At most this many processes and threads (TasksMax).")

    @field_validator("memory")
    @classmethod
    def _memory(cls, value: str | None) -> str | None:
        return value if value is None else form(LIMIT_SIZE_RE, value, "memory", FORMS)

    @field_validator("cpu")
    @classmethod
    def _cpu(cls, value: str | None) -> str | None:
        return value if value is None else form(PERCENT_RE, value, "cpu", FORMS)


class LimitsPart(Part):
    FORMS = FORMS
    ENTRIES = ((LimitsEntry, "`limits`", "An app's `limits`."),)

    limits: LimitsEntry | None = Field(
        None,
        description="What the app's processes use together, at most: a systemd slice per app (a host without systemd "
                    "refuses them).",
    )

    @field_validator("limits", mode="before")
    @classmethod
    def _limits(cls, value: Any) -> Any:
        return value if value is None else entry(LimitsEntry, value, "limits", FORMS)
