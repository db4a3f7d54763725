"""An example inventory for real servers over SSH: copy it, change the names, and run

    pyinfra inventories/example.py deploys/site.py --dry --diff   # preview
    pyinfra inventories/example.py deploys/site.py                # converge

pyinfra connects as `ssh_user`; djangohost needs root on the server, so either connect as root
or as a user with passwordless sudo and set `_sudo` (the README's *Real servers* says what a
fresh Debian 12 or 13 server needs).
"""

web = [
    (
        "web1.example.com",
        {
            "ssh_user": "deploy",
            "_sudo": True,
            # Host-level settings; each shown with its default (deploys/model/defaults.py).
            "djangohost_root": "/webapps",
            "djangohost_python": "python3",
            "djangohost_gunicorn_version": "23.0.0",
            "apps": [
                {
                    "name": "shop",
                    "domains": ["shop.example.com", "www.shop.example.com"],
                    "source": "../shop",  # the directory with manage.py, relative to where pyinfra runs
                    "workers": 4,
                    "env": {"SHOP_CURRENCY": "EUR"},
                    "client_max_body_size": "20m",
                    "tls": {"mode": "acme", "email": "ops@example.com"},  # Let's Encrypt
                },
                {
                    "name": "blog",
                    "domains": ["blog.example.com"],
                    # Fetched on the server by the app's user with its deploy key.
                    "source": {"git": "git@git.example.com:acme/blog.git", "ref": "main",
                               "deploy_key": "keys/blog_deploy_key"},
                    "wsgi_module": "config.wsgi",
                    "settings_module": "config.settings.production",
                    "requirements": "requirements/production.txt",
                    "database": {"engine": "mariadb"},  # an account identified by the app's user
                    "tls": {"mode": "provided", "cert": "certs/blog.pem", "key": "certs/blog.key"},
                },
                {
                    "name": "chat",
                    "domains": ["chat.example.com"],
                    "source": "../chat",
                    # Django Channels: Gunicorn with uvicorn's worker, WebSockets and streams through
                    # Nginx; the channel layer in the app's own Redis (docs/asgi.md).
                    "server": "asgi",
                    "broker": True,
                    "read_timeout": 600,  # a WebSocket quiet for 10 minutes is closed; clients reconnect
                    "tls": {"mode": "acme", "email": "ops@example.com"},
                },
            ],
        },
    ),
]
