# Every deploy file imports from this package: what djangohost changes in pyinfra comes first.
from deploys.engine import patches  # noqa: F401
