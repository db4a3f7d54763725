"""The local demo: hello and goodbye on one Docker container (see `./demo`)."""

import os

CONTAINER = os.environ.get("DJANGOHOST_CONTAINER", "djangohost-demo")

targets = [
    (
        f"@docker/{CONTAINER}",
        {
            "apps": [
                {"name": "hello", "domains": ["hello.test"], "source": "examples/hello"},
                {"name": "goodbye", "domains": ["goodbye.test"], "source": "examples/goodbye"},
            ],
        },
    ),
]
