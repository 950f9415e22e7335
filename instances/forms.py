"""Admin forms: secret values can be written, never read back."""

import json
import re

from django import forms
from django.core.exceptions import ValidationError

from ccp.errors import CCPError

from .context import template_set_for
from .drivers.ssh_connect import validate_private_key
from .models import Instance, Node, default_protected_paths
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

    generate_key = forms.BooleanField(
        required=False,
        label="Generate a key pair for this node",
        help_text="Instead of pasting a key: CCP makes one (ed25519), stores its private half encrypted, and the "
        "node's page shows the public key to add to the node account's ~/.ssh/authorized_keys.",
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

    def clean(self):
        data = super().clean()
        if data.get("generate_key") and data.get("private_key"):
            self.add_error("generate_key", "Paste a key or generate one, not both.")
        return data


class LinesField(forms.CharField):
    """A list edited as one item a line (health URLs, protected paths): no JSON to type."""

    widget = forms.Textarea(attrs={"rows": 3, "cols": 60})

    def prepare_value(self, value):
        if isinstance(value, list | tuple):
            return "\n".join(str(item) for item in value)
        return value

    def to_python(self, value) -> list[str]:
        if isinstance(value, list):
            return value
        text = str(value or "").strip()
        if text.startswith("["):  # a JSON list, as the field took before (and the API takes)
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list):
                return [str(item) for item in parsed]
        return [line.strip() for line in text.splitlines() if line.strip()]


def template_port_fields() -> dict[str, forms.IntegerField]:
    """One required field per port name the (default release's) template set needs: port_<name>."""
    try:
        template_set = template_set_for(None)
    except CCPError:
        return {}
    return {
        f"port_{name}": forms.IntegerField(
            min_value=1,
            max_value=65535,
            label=f"Port {name}",
            help_text=f"Written as {variable} into .env (template set {template_set.name}).",
            error_messages={
                "required": f"The template set {template_set.name} needs a port for {name!r} ({variable})."
            },
        )
        for name, variable in template_set.ports.items()
    }


class InstanceAdminForm(forms.ModelForm):
    health_urls = LinesField(
        required=False,
        help_text="One URL a line, probed from the node. Empty: the template set's health checks.",
    )
    protected_paths = LinesField(
        required=False,
        initial=default_protected_paths,
        help_text="One path a line, relative to the install directory: tenant content an upgrade must never change.",
    )
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

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in self.port_field_names():
            self.initial.setdefault(name, (self.instance.ports or {}).get(name.removeprefix("port_")))
        if "install_dir" in self.fields:
            self.fields["install_dir"].required = False
            self.fields["install_dir"].help_text = "Empty: the node's instance root plus the slug."

    def port_field_names(self) -> list[str]:
        return [name for name in self.fields if name.startswith("port_")]

    def clean(self):
        data = super().clean()
        names = self.port_field_names()
        if names:
            ports = dict(self.instance.ports or {})
            ports.update({n.removeprefix("port_"): data[n] for n in names if data.get(n) is not None})
            self.instance.ports = ports  # "ports" itself is not on the form: its fields are
        if "install_dir" in self.fields and not data.get("install_dir") and data.get("node") and data.get("slug"):
            data["install_dir"] = f"{data['node'].instance_root.rstrip('/')}/{data['slug']}"
        return data

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
