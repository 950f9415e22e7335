"""Key rotation across every model that stores Fernet tokens."""

from django.db import transaction

from .models import Instance, Node, NotificationTarget
from .secrets import rotate_token

# (model, field) pairs that hold Fernet tokens; a new encrypted field is added here.
ENCRYPTED_FIELDS = [
    (Instance, "secrets_encrypted"),
    (Node, "ssh_private_key_encrypted"),
    (NotificationTarget, "url_encrypted"),
]


@transaction.atomic
def rotate_all_secrets() -> dict[str, int]:
    counts = {}
    for model, field in ENCRYPTED_FIELDS:
        count = 0
        for pk, token in model.objects.exclude(**{field: ""}).values_list("pk", field).iterator():
            model.objects.filter(pk=pk).update(**{field: rotate_token(token)})
            count += 1
        counts[f"{model._meta.verbose_name_plural} ({field})"] = count
    return counts
