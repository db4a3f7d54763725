"""Retire an app ("state": "absent"): it stops being served; its data stays unless "purge"."""

from __future__ import annotations

import shlex

from pyinfra import host
from pyinfra.api import deploy

from deploys.components import registry
from deploys.components.supervisor import update
from deploys.engine import ops
from deploys.engine.templates import render
from deploys.model import paths
from deploys.model.inventory import App
from facts.state import State


@deploy("Removed app")
def remove(app: App, state: State) -> None:
    """Stop and remove the app's Supervisor programs, its scheduled jobs and its socket (its Nginx
    site goes with the Nginx deploy); with purge, also its database, role, home, certificate,
    user and group."""
    program = state.paths.get(paths.supervisor_program(app))
    ops.command(
        name=f"{app.name}: supervisor programs removed",
        # `update NAME` stops and removes a program whose configuration is gone.
        command=f"rm -f {paths.supervisor_program(app)} {paths.supervisor_processes(app)} "
                f"{paths.supervisor_broker(app)} && "
                f"{update(app.name, [app.name])}",
        needed=program is not None,
        reason=f"{app.name} has no supervisor program",
    )
    for path in host.loop([paths.jobs_cron(app), paths.slice_unit(app)]):
        ops.absent(name=f"{app.name}: {path} removed", path=path, current=state.paths.get(path))
    ops.absent(name=f"{app.name}: socket removed", path=app.socket, current=state.paths.get(app.socket))
    if not app.purge:
        return

    # Before its database goes (a session of a process left behind would keep it) and its users.
    users = [user for user in (app.name, paths.builder(app)) if user in state.users]
    end_user = shlex.quote(render("removal/end-user.sh.j2"))
    ops.command(
        name=f"{app.name}: processes, crontabs and files of {' and '.join(users) or 'its users'} ended",
        command=" && ".join(f"sh -c {end_user} end-user {user}" for user in users),
        needed=bool(users),
        reason=f"{app.name} has no user",
    )
    for database in registry.DATABASES.values():  # an absent app's engine is not known: each is asked
        database.drop(app, state)
    stamps = [path for path in registry.watched(app) if path.startswith(f"{paths.STAMPS}/")]
    ops.command(
        name=f"{app.name}: home removed",
        command=(f"rm -rf {app.home} {paths.build_home(app)} {paths.nginx_logs(app)} {' '.join(stamps)} "
                 f"{paths.BACKGROUND}/{app.name}.*"),
        needed=any(path in state.paths for path in (app.home, paths.build_home(app), *stamps)),
        reason=f"{app.home} does not exist",
    )
    renewal = f"{paths.CERTBOT_RENEWAL}/{app.name}.conf"
    ops.command(
        name=f"{app.name}: certificate removed",
        command=(f"rm -rf {paths.tls_dir(app)} && "
                 f"{{ [ ! -f {renewal} ] || certbot delete --non-interactive --cert-name {app.name}; }}"),
        needed=paths.tls_dir(app) in state.paths,
        reason=f"{app.name} has no certificate",
    )
    for user in host.loop([app.name, paths.builder(app)]):
        ops.command(
            name=f"{app.name}: user {user} removed",
            # userdel removes the user's own group too (USERGROUPS_ENAB).
            command=f"userdel {user}",
            needed=user in state.users,
            reason=f"user {user} does not exist",
        )
