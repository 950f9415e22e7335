"""Admin forms: secret values can be written, never read back."""

import re

from django import forms
from django.core.exceptions import ValidationError

from ccp.errors import CCPError

from .drivers.ssh_connect import validate_private_key
from .models import Instance, Node
from .privileged import instance_check_privileged_change

SECRET_LINE_RE = re.compile(r"^([A-Z][A-Z0-9_]*)=(.*)$")


class NodeAdminForm(forms.ModelForm):
    private_key = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 4, "autocomplete": "off", "placeholder": "(unchanged)"}),
        help_text="Paste an unencrypted OpenSSH/PEM private key to store it encrypted. "
        "It is never shown again; leave empty to keep the stored one.",
    )

    class Meta:
        model = Node
        fields = [
            "name",
            "address",
            "ssh_port",
            "ssh_user",
            "driver",
            "instance_root",
            "registry_access",
            "image_source",
            "ssh_key_path",
        ]

    def clean_private_key(self) -> str:
        validate_private_key(self.cleaned_data["private_key"])
        return self.cleaned_data["private_key"]


class InstanceAdminForm(forms.ModelForm):
    secret_updates = forms.CharField(
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": 3, "autocomplete": "off", "placeholder": "NAME=value"}),
        help_text="One NAME=value per line to set secrets (NAME= removes one). Values are stored encrypted "
        "and never shown.",
    )

    class Meta:
        model = Instance
        fields = [
            "name",
            "slug",
            "node",
            "status",
            "install_dir",
            "compose_project",
            "image_tag",
            "is_registered",
            "domain",
            "ports",
            "profiles",
            "health_urls",
            "protected_paths",
            "upgrade_script",
            "backup_enabled",
        ]

    user = None  # set by InstanceAdmin.get_form: privileged changes are checked for this user

    def _post_clean(self) -> None:
        super()._post_clean()  # the instance now holds the submitted values
        try:
            instance_check_privileged_change(instance=self.instance, user=self.user)
        except CCPError as exc:
            self.add_error(None, exc.message)

    def clean_secret_updates(self) -> dict[str, str]:
        updates = {}
        for number, line in enumerate(self.cleaned_data["secret_updates"].splitlines(), start=1):
            if not line.strip():
                continue
            match = SECRET_LINE_RE.match(line.strip("\r"))
            if not match:
                raise ValidationError(f"Line {number} is not NAME=value with an upper-case NAME.")
            updates[match.group(1)] = match.group(2)
        return updates
