"""The Celery app, configured from Django settings (CELERY_* names)."""

import os

from celery import Celery
from celery.signals import beat_init, worker_init

from ccp import broker_fs
from ccp.startup import refuse_to_start_misconfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccp.settings")
broker_fs.register()  # the embedded broker of `make run` (ccpfs://): messages written whole

app = Celery("ccp")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

worker_init.connect(refuse_to_start_misconfigured, weak=False)
beat_init.connect(refuse_to_start_misconfigured, weak=False)
