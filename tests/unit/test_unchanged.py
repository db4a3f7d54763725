"""Operations with nothing to do are not made: UNCHANGED stands for them."""

from __future__ import annotations

from deploys.engine import ops
from facts.state import EnvFileState, PathState


def test_up_to_date_paths_make_no_operation():
    # No pyinfra state exists here: making an operation would fail.
    content = "bind = 'unix:/webapps/hello/run/gunicorn.sock'\n"
    assert ops.file(name="conf", path="/c", content=content, owner="root", group="hello", mode="640",
                    current=PathState("file", "root", "hello", "640", sha256=ops.sha256(content))) is ops.UNCHANGED
    assert ops.directory(name="d", path="/d", owner="root", group="hello", mode="750",
                         current=PathState("dir", "root", "hello", "750")) is ops.UNCHANGED
    assert ops.directories(name="ds", directories=[("/d", "root", "hello", "750"), ("/d/e", "hello", "hello", "700")],
                           current={"/d": PathState("dir", "root", "hello", "750"),
                                    "/d/e": PathState("dir", "hello", "hello", "700")}) is ops.UNCHANGED
    written = {"/f": PathState("file", "root", "hello", "640", sha256=ops.sha256(content))}
    assert ops.files(name="fs", files=[ops.File("/f", content, group="hello", mode="640")],
                     current=written) is ops.UNCHANGED
    assert ops.link(name="l", path="/l", target="releases/1", current=ops.link_state("releases/1")) is ops.UNCHANGED
    assert ops.absent(name="a", path="/a", current=None) is ops.UNCHANGED
    assert ops.command(name="c", command="false", needed=False, reason="done") is ops.UNCHANGED
    assert ops.unpack(name="u", path="/r", archive=b"", needed=False) is ops.UNCHANGED
    public = "DJANGO_SETTINGS_MODULE=djangohost_settings\n"
    assert ops.env_file(name="e", path="/e", content=public, group="hello", secrets={},
                        current=EnvFileState(ops.sha256(public), "f00", has_secret_key=True)) is ops.UNCHANGED


def test_unchanged_answers_as_an_operation_that_changed_nothing():
    guard = ops.Guard("hello")
    guard.watch(ops.UNCHANGED)
    assert guard.ok() and not ops.happened([ops.UNCHANGED])


class Ran:
    """An operation of ops.files that ran and wrote something."""

    will_change = True

    def did_change(self) -> bool:
        return True

    def did_error(self) -> bool:
        return False

    def is_complete(self) -> bool:
        return True


def test_a_file_written_with_others_changed_only_if_it_was_stale():
    written, untouched = ops.Written(Ran(), stale=True), ops.Written(Ran(), stale=False)
    assert ops.happened([written]) and written.will_change
    assert not ops.happened([untouched]) and not untouched.will_change
    assert not ops.happened([ops.Written(ops.UNCHANGED, stale=False)])
