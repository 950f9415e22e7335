"""/metrics: the fleet in Prometheus' text format, for the Prometheus the tenants' stack already runs.

Refused unless the request carries the bearer token of CCP_METRICS_TOKEN, or comes straight (not
through the proxy) from a network of CCP_METRICS_ALLOWED_NETWORKS. With neither set, everyone is
refused: the metrics name every instance and node of the fleet.
"""

import hmac
import ipaddress

from django.conf import settings
from django.http import HttpResponse
from django.utils import timezone
from django.views.decorators.http import require_GET

from ccp.prometheus import CONTENT_TYPE, render
from instances.metrics import fleet_metrics
from upgrades.rollouts.metrics import rollout_metrics


def _bearer_token_ok(request) -> bool:
    expected = settings.CCP_METRICS_TOKEN
    scheme, _, token = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return bool(expected) and scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


def _network_ok(request) -> bool:
    # Behind the proxy every request comes from the proxy's own address, so a network rule would let the
    # whole internet in. A request that says it came through a proxy is judged by its token only.
    if "HTTP_X_FORWARDED_FOR" in request.META or "HTTP_FORWARDED" in request.META:
        return False
    try:
        address = ipaddress.ip_address(request.META.get("REMOTE_ADDR", ""))
    except ValueError:
        return False
    if address.version == 6 and address.ipv4_mapped:
        address = address.ipv4_mapped
    return any(address in network for network in settings.CCP_METRICS_ALLOWED_NETWORKS)


def metrics_allowed(request) -> bool:
    return _bearer_token_ok(request) or _network_ok(request)


@require_GET
def metrics(request):
    if not metrics_allowed(request):
        if not (settings.CCP_METRICS_TOKEN or settings.CCP_METRICS_ALLOWED_NETWORKS):
            message = "Metrics are off: set CCP_METRICS_TOKEN or CCP_METRICS_ALLOWED_NETWORKS to allow scrapes.\n"
        else:
            message = "A bearer token (Authorization: Bearer <CCP_METRICS_TOKEN>) is needed from here.\n"
        response = HttpResponse(
            message, status=401 if settings.CCP_METRICS_TOKEN else 403, content_type="text/plain; charset=utf-8"
        )
        if settings.CCP_METRICS_TOKEN:
            response["WWW-Authenticate"] = 'Bearer realm="ccp-metrics"'
        return response
    families = [*fleet_metrics(now=timezone.now()), *rollout_metrics()]
    return HttpResponse(render(families), content_type=CONTENT_TYPE)
