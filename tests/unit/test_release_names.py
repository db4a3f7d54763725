"""Which release and virtualenv a deploy uses: the names that make an unchanged source change
nothing, also for git sources whose first release was named on the host."""

from __future__ import annotations

from deploys.components.app import release_id, venv_name
from deploys.components.app.source import Code
from facts.state import PathState, State
from tests.helpers import EXAMPLES, load_apps

NOW = "20261122T120000"
COMMIT = "8e67ff55a4d4" + "0" * 28


def shop():
    (app,) = load_apps("web1", {"apps": [{
        "name": "shop", "domains": ["shop.test"], "wsgi_module": "hello.wsgi", "settings_module": "hello.settings",
        "source": {"git": "ssh://git@git.test/shop.git", "ref": "main"}}]})
    return app


def test_local_source_reuses_the_release_of_the_same_content():
    (hello,) = load_apps("web1", {"apps": [{"name": "hello", "domains": ["hello.test"],
                                            "source": str(EXAMPLES / "hello")}]})
    state = State(releases={hello.home: {"20261121T090000-aaaaaaaaaaaa": "k1"}})
    assert release_id(hello, state, Code("aaaaaaaaaaaa"), NOW) == "20261121T090000-aaaaaaaaaaaa"
    assert release_id(hello, state, Code("bbbbbbbbbbbb"), NOW) == f"{NOW}-bbbbbbbbbbbb"


def test_git_release_is_found_by_its_commit_whatever_its_name():
    app = shop()
    state = State(
        releases={app.home: {"20261121T090000-git": "20261121T090000-git", "20261120T090000-8e67ff55a4d4": "k"}},
        commits={app.home: {"20261121T090000-git": COMMIT, "20261120T090000-8e67ff55a4d4": COMMIT}},
        paths={app.path("current"): PathState("link", target="releases/20261121T090000-git")},
    )
    assert release_id(app, state, Code(COMMIT[:12], commit=COMMIT), NOW) == "20261121T090000-git"
    assert release_id(app, state, Code("123456789abc", commit="123456789abc" + "0" * 28), NOW) == f"{NOW}-123456789abc"
    assert release_id(app, state, Code(None), NOW) == f"{NOW}-git"  # not fetched yet


def test_virtualenv_is_found_by_its_key_the_live_one_first():
    app = shop()
    state = State(venvs={app.home: {"k1": "k1", "20261121T090000-git": "k1", "k2": "k2"}},
                  paths={app.path("venv"): PathState("link", target="venvs/20261121T090000-git")})
    assert venv_name(app, state, "k1", NOW) == "20261121T090000-git"
    assert venv_name(app, state, "k2", NOW) == "k2"
    assert venv_name(app, state, "k3", NOW) == "k3"
    assert venv_name(app, state, None, NOW) == f"{NOW}-git"
