# Every deploy file imports from this package: pyinfra's operation ordering and argument handling
# are made fast first.
from deploys import arguments, ordering  # noqa: F401
