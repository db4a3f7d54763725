"""The inventory reference (docs/inventory.md), written from the contract's models, so that it
cannot drift from what the deploy accepts; and the contract as a JSON Schema, for editors:

    python -m deploys.reference > docs/inventory.md
    python -m deploys.reference --json > inventory.schema.json

tests/unit/test_inventory.py fails when the committed page is not what this writes.
"""

from __future__ import annotations

import json
import re
import sys
from typing import Any

from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from deploys.components.registry import CONTRACT
from deploys.model import schema

INTRO = """# The inventory reference

An inventory is a pyinfra inventory (`inventories/example.py`): hosts, their groups (`app`, `db`,
`lb`) and their data. djangohost reads a host's data as below: its settings, and its `apps`.
Every field is checked before anything runs on any host; a bad value stops the run with the host,
the app and the field named. The same contract as a JSON Schema, for editors:
`python -m deploys.reference --json > inventory.schema.json`.

This page is written from the contract's models (`deploys/model/schema.py`, and each component's
part of an app entry, `deploys/components/<name>/contract.py`):
`python -m deploys.reference > docs/inventory.md`.
"""

# Each model, its heading, and what a value of it is; then the components' entries.
SECTIONS: tuple[tuple[type[schema.Model], str, str], ...] = (
    (schema.HostSettingsEntry, "Host settings", "Host or group data: they end up in commands run as root."),
    (CONTRACT, "An app entry", "Each item of a host's `apps`. `name`, `domains` and `source` are required "
                                      "unless `state` is absent."),
    (schema.GitSourceEntry, "`source` from git", 'An app\'s `source` as `{"git": URL, "ref": REF}`.'),
    (CONTRACT.DATABASE_ENTRY, "`database`", 'An app\'s `database` as `{"engine": ...}`.'),
    (schema.TlsEntry, "`tls`", "An app's `tls`."),
    (schema.BackupEntry, "`backup` and `djangohost_backup`",
     "When backups are taken and how many are kept; a key an app's `backup` leaves out is the host's."),
    (schema.OffsiteEntry, "`offsite` of `backup` and `djangohost_backup`",
     "Where restic copies each app's backups off the host (see backups.md#off-the-host-with-restic); a key an "
     "app's `offsite` leaves out is the host's, but the password is each app's own."),
    (schema.ProcessEntry, "`processes`", "Each of an app's `processes`, as a command line or a dict."),
    (schema.LogsEntry, "`djangohost_logs`", "How the host's logs are rotated."),
    (schema.NotifyEntry, "`djangohost_notify`", "Where the host's alerts go (see Everyday operations, Alerts)."),
    *(section for part in schema.parts_of(CONTRACT) for section in part.ENTRIES),
)
FORMS = schema.forms(CONTRACT)


def type_of(field: FieldInfo) -> str:
    text = str(field.annotation).replace("typing.", "")
    text = re.sub(r"<class '(?:[\w.]+\.)?(\w+)'>", r"\1", text)
    text = re.sub(r"\bdeploys\.[\w.]*\.(\w+)", r"\1", text)
    return text.replace("Literal[", "one of [").replace("NoneType", "None")


def default_of(name: str, field: FieldInfo) -> str:
    if field.default_factory is not None:
        value: Any = field.default_factory()  # type: ignore[call-arg]
    elif field.default is PydanticUndefined:
        return "required"
    else:
        value = field.default
    if isinstance(value, schema.Model):
        return "see below"
    if value is None or value == [] or value == {}:
        return "—" if name not in schema.REQUIRED_FIELDS else "required"
    return f"`{json.dumps(value)}`"


def cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def table(model: type[schema.Model]) -> list[str]:
    rows = ["| field | type | default | what it is |", "|---|---|---|---|"]
    # An app entry's own fields first, then each part's, in the order of the components.
    parts = schema.parts_of(model)
    models: list[type[schema.Model]] = [schema.AppEntry, *parts] if parts else [model]
    for name, field in ((name, model.model_fields[name]) for each in models for name in each.model_fields):
        if model is schema.HostSettingsEntry and name == "apps":
            continue
        described = field.description or ""
        form = FORMS.get(name)
        if form and form.startswith("must") and form not in described:
            described = f"{described} It {form}.".strip() if described else f"It {form}."
        rows.append(f"| `{name}` | {cell(type_of(field))} | {cell(default_of(name, field))} | {cell(described)} |")
    return rows


def markdown() -> str:
    parts = [INTRO]
    for model, heading, what in SECTIONS:
        parts.append("\n".join([f"## {heading}", "", what, "", *table(model), ""]))
    return "\n".join(parts)


if __name__ == "__main__":
    print(json.dumps(schema.json_schema(CONTRACT), indent=2) if sys.argv[1:] == ["--json"] else markdown(), end="")
