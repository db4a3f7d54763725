"""An app's scheduled jobs: cron starts each one (on every host, with systemd or without: one
mechanism, the one backups use) through bin/job, which holds the job's lock so that runs never
overlap, writes its output to the app's logs and records its end for the status view."""

from __future__ import annotations

from collections.abc import Sequence

from pyinfra.api import deploy

from deploys.components import Component, Service, limits, notify
from deploys.components.schedule.contract import Job, SchedulePart
from deploys.engine import ops
from deploys.engine.ops import Guard
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App
from facts.state import State


def jobs(app: App) -> tuple[Job, ...]:
    """The app's jobs on this host: its schedule on its primary server, nothing on the others."""
    return app.part(SchedulePart).jobs(app.name) if app.primary else ()


@deploy("Schedule")
def schedule(app: App, state: State, guard: Guard) -> None:
    """bin/job, the directory of the jobs' last runs, and the app's cron file; none without jobs."""
    cron = paths.jobs_cron(app)
    if not jobs(app):
        ops.absent(name=f"{app.name}: no scheduled jobs", path=cron, current=state.paths.get(cron))
        return
    ops.file(
        name=f"{app.name}: bin/job",
        path=paths.job_script(app),
        content=render("schedule/job.j2", app=app, run=paths.run_script(app), logs=app.path("logs"),
                       records=paths.job_records(app), confine=limits.confine(app), run_dir=paths.RUN_DIR,
                       notify=notify.TOOL),
        owner="root", group=app.name, mode="750",
        current=state.paths.get(paths.job_script(app)),
    )
    ops.directory(
        name=f"{app.name}: last runs of its jobs",
        path=paths.job_records(app), owner="root", group="root", mode="700",
        current=state.paths.get(paths.job_records(app)),
    )
    # cron reads /etc/cron.d files that only root can write.
    ops.file(
        name=f"{app.name}: scheduled jobs",
        path=cron,
        content=render("schedule/jobs.cron.j2", app=app, jobs=jobs(app), job=paths.job_script(app)),
        owner="root", group="root", mode="644",
        current=state.paths.get(cron),
    )


def _watched(app: App) -> Sequence[str]:
    return [paths.jobs_cron(app), *([paths.job_script(app), paths.job_records(app)] if jobs(app) else [])]


# cron runs the jobs (and the backups, deploys.components.backups).
CRON = Service("cron", "kill -0 $(cat /run/crond.pid 2>/dev/null) 2>/dev/null")

COMPONENT = Component(
    "schedule", contract=SchedulePart, watched=_watched, host_paths=(paths.JOBS,),
    services=lambda apps: [CRON] if any(jobs(app) for app in apps) else [])
