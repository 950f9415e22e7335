import os

from django.core.wsgi import get_wsgi_application

from ccp.startup import refuse_to_start_misconfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ccp.settings")
application = get_wsgi_application()
refuse_to_start_misconfigured()  # a WSGI server runs no management command, so no system checks otherwise
