# Every deploy file imports from this package: pyinfra's operation ordering is made fast first.
from deploys import ordering  # noqa: F401
