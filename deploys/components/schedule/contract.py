"""The schedule's part of an app entry: the jobs cron starts as the app."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from deploys.model.schema import NAME_RE, Model, Part, command_line, cron_at, cron_fields, form, nested

FORMS = {
    "schedule": "must be a list of jobs {\"name\": ..., \"command\": ..., \"at\" or \"cron\": ...}",
}


@dataclass(frozen=True)
class Job:
    """A scheduled job of an app."""

    name: str
    command: str
    cron: str  # five cron fields


class JobEntry(Model):
    """A scheduled job of an app: `at` or `cron`."""

    name: str = Field(
        json_schema_extra={"pattern": f"^{NAME_RE.pattern}$"},
        description="The job's name: its log is logs/job-<name>.log.",
    )
    command: str = Field(
        description="A command line run as the app in the live release, with its environment; never two runs of one "
                    "job at once.",
    )
    at: Literal["hourly", "daily", "weekly", "monthly"] | None = Field(
        None,
        description="hourly, daily, weekly or monthly (at a minute spread by name), or give cron.",
    )
    cron: str | None = Field(None, description="Five cron fields of numbers, *, -, / and , such as \"*/15 * * * *\".")

    _command = field_validator("command")(command_line)
    _cron = field_validator("cron")(cron_fields)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return form(NAME_RE, value, "name")

    @model_validator(mode="after")
    def _one_schedule(self) -> JobEntry:
        if (self.at is None) == (self.cron is None):
            raise ValueError("give at (hourly, daily, weekly or monthly) or cron, one of them")
        return self


class SchedulePart(Part):
    FORMS = FORMS
    ENTRIES = ((JobEntry, "`schedule`", "Each job of an app's `schedule`."),)

    schedule: list[JobEntry] = Field(
        default_factory=list,
        description='Jobs cron starts as the app: [{"name": ..., "command": ..., "at": "daily"}] or with "cron".',
    )

    @field_validator("schedule", mode="before")
    @classmethod
    def _schedule(cls, value: Any) -> Any:
        if not isinstance(value, list):
            raise ValueError(f"{value!r} {FORMS['schedule']}")
        jobs: list[JobEntry] = []
        for index, entry in enumerate(value):
            try:
                jobs.append(nested(JobEntry, entry))
            except ValueError as error:
                named = isinstance(entry, dict) and isinstance(entry.get("name"), str)
                label = entry["name"] if named else index + 1
                raise ValueError(f"job {label}: {error}") from None
        names = [job.name for job in jobs]
        for name in names:
            if names.count(name) > 1:
                raise ValueError(f"job {name}: two jobs have this name")
        return jobs

    def jobs(self, app_name: str) -> tuple[Job, ...]:
        """The jobs, each with its five cron fields (`at`: a minute of the app and job's own)."""
        return tuple(Job(job.name, job.command, job.cron or cron_at(job.at or "daily", f"{app_name}.{job.name}"))
                     for job in self.schedule)
