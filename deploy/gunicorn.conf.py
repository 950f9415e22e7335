"""gunicorn settings of the production web process (deploy/systemd/ccp-web.service):
`gunicorn --config deploy/gunicorn.conf.py ccp.wsgi`. A flag on the command line overrides a value here."""

import os

# Behind the TLS proxy (deploy/nginx/ccp.conf) on loopback; CCP_BIND/CCP_PORT are the same variables
# `make run` uses.
bind = f"{os.environ.get('CCP_BIND', '127.0.0.1')}:{os.environ.get('CCP_PORT', '8000')}"
workers = int(os.environ.get("CCP_WEB_WORKERS", "3"))
# Verifying a backup re-hashes it inside the request (README "Backups"): a large one takes minutes.
timeout = int(os.environ.get("CCP_WEB_TIMEOUT", "300"))
graceful_timeout = 30
# Restart each worker now and then, so a slow leak cannot grow without bound.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
errorlog = "-"
# Django decides what is https from SECURE_PROXY_SSL_HEADER; gunicorn itself trusts no proxy header
# from anywhere but loopback.
forwarded_allow_ips = "127.0.0.1,::1"
