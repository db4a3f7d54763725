"""managed by djangohost: publishes a release's static files by content, as the app's user.

    python3 publish-static.py COLLECTED STATIC

COLLECTED holds what collectstatic (and django-compressor's offline compress) wrote for a release,
anew. Each of its files takes its place in STATIC, the directory Nginx serves, only when its
content differs from the file there (a new file written beside it, then renamed over it: readers
see the old file or the new one). An unchanged file keeps its time, so its compressed copies are
not made again (bin/compress-static), and a changed one gets a new time whatever time its release
gave it. Files of earlier releases stay: pages served before the switch still name them.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import stat
import sys


def same(collected: str, published: str) -> bool:
    try:
        mode = os.lstat(published).st_mode
    except FileNotFoundError:
        return False
    return stat.S_ISREG(mode) and filecmp.cmp(collected, published, shallow=False)


def publish(collected: str, static: str) -> int:
    """Publish every regular file of `collected` into `static`; the number of files written."""
    written = 0
    for directory, subdirectories, files in os.walk(collected):
        relative = os.path.relpath(directory, collected)
        target = os.path.normpath(os.path.join(static, relative))
        if os.path.islink(target) or (os.path.lexists(target) and not os.path.isdir(target)):
            os.unlink(target)
        os.makedirs(target, exist_ok=True)
        for name in files:
            source = os.path.join(directory, name)
            if not stat.S_ISREG(os.lstat(source).st_mode) or same(source, os.path.join(target, name)):
                continue
            new = os.path.join(target, f".{name}.djangohost-new")
            shutil.copyfile(source, new, follow_symlinks=False)
            os.replace(new, os.path.join(target, name))
            written += 1
        subdirectories.sort()
    return written


if __name__ == "__main__":
    collected, static = sys.argv[1:3]
    count = publish(collected, static)
    shutil.rmtree(collected, ignore_errors=True)  # a project without static files collected none
    print(f"{count} static file{'' if count == 1 else 's'} changed")
