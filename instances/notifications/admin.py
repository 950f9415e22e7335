"""Notification targets (superusers manage them; the URL is write-only) and the delivery records."""

from django import forms
from django.contrib import admin
from django.urls import reverse
from django.utils.html import format_html

from ccp.admin_mixins import ReadOnlyAdmin

from .choices import SUBSCRIBABLE_EVENTS
from .delivery import url_problem
from .models import NotificationDelivery, NotificationTarget
from .services import notification_target_save, notification_target_test


class NotificationTargetForm(forms.ModelForm):
    url = forms.CharField(
        label="apprise URL",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off", "size": 80}),
        help_text="e.g. json://hooks.example.org/ccp, mailto://user:password@smtp.example.org?to=ops@example.org, "
        "slack://TokenA/TokenB/TokenC/#ops, ntfy://ntfy.example.org/ccp, or djangomail://ops@example.org (the "
        "panel's own e-mail server). Stored encrypted and never shown again; "
        "leave empty to keep the stored one.",
    )
    events = forms.MultipleChoiceField(choices=SUBSCRIBABLE_EVENTS, widget=forms.CheckboxSelectMultiple, required=False)

    class Meta:
        model = NotificationTarget
        fields = ["name", "url", "events", "enabled"]

    def clean(self):
        cleaned = super().clean()
        url = cleaned.get("url") or ""
        problem = url_problem(url) if url else ""
        if not self.instance.pk and not url:
            self.add_error("url", "A new target needs its apprise URL.")
        elif problem:
            self.add_error("url", problem)  # the form never echoes the URL back (render_value=False)
        return cleaned


@admin.register(NotificationTarget)
class NotificationTargetAdmin(admin.ModelAdmin):
    form = NotificationTargetForm
    list_display = ("name", "service", "event_list", "enabled", "last_delivery")
    list_filter = ("enabled", "service")
    search_fields = ("name",)
    actions = ["send_test"]

    @admin.display(description="Events")
    def event_list(self, obj: NotificationTarget) -> str:
        return ", ".join(obj.events or []) or "(none)"

    @admin.display(description="Last delivery")
    def last_delivery(self, obj: NotificationTarget) -> str:
        last = obj.deliveries.order_by("-created_at", "-pk").first()
        if last is None:
            return "-"
        url = reverse("admin:instances_notificationdelivery_change", args=[last.pk])
        return format_html('<a href="{}">{} {}</a>', url, last.event, last.get_status_display().lower())

    def save_model(self, request, obj, form, change) -> None:
        # The form checked the URL with apprise; the service encrypts it, saves and audits.
        notification_target_save(target=obj, url=form.cleaned_data.get("url") or None, user=request.user)

    @admin.action(description="Send a test message", permissions=["change"])
    def send_test(self, request, queryset) -> None:
        for target in queryset:
            delivery = notification_target_test(target=target, user=request.user)
            url = reverse("admin:instances_notificationdelivery_change", args=[delivery.pk])
            self.message_user(
                request,
                format_html('Test message to {} queued: <a href="{}">delivery #{}</a>.', target, url, delivery.pk),
            )


@admin.register(NotificationDelivery)
class NotificationDeliveryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event", "target", "instance", "status", "attempts", "short_error", "sent_at")
    list_filter = ("status", "event", "target")
    search_fields = ("title", "instance__slug")
    list_select_related = ("target", "instance")
    fields = (
        "event",
        "target",
        "instance",
        "title",
        "body",
        "link",
        "dedupe_key",
        "status",
        "attempts",
        "last_error",
        "created_at",
        "last_attempt_at",
        "sent_at",
    )

    @admin.display(description="Last error")
    def short_error(self, obj: NotificationDelivery) -> str:
        return obj.last_error[:120]
