"""The order the suite's modules are handed to the two workers (scripts/test: `--dist loadfile`,
a module at a time, in the order collected): the longest first, so that no long module starts
last while the other worker has nothing left (docs/testing.md, How long it takes)."""

from __future__ import annotations

import pytest

# Each module's share of the suite, longest first (first deploys on several targets, cut deploys,
# a fresh host rebuilt from backups); the others follow in their own order.
LONGEST = ("test_real_servers", "test_load_balancer", "test_asgi", "test_mariadb", "test_tls", "test_crash",
           "test_offsite", "test_backups", "test_real_projects", "test_history_and_alerts", "test_systemd")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        package, _, name = item.module.__name__.rpartition(".") if item.module else ("", "", "")
        return LONGEST.index(name) if package.endswith("e2e") and name in LONGEST else len(LONGEST)

    items.sort(key=rank)  # stable: each module's tests keep their order
