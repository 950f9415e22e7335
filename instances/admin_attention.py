"""Attention in the admin: the Instance changelist's column, filter and "Acknowledge attention…" action,
and the Attention list (history, read-only). An instance's page shows its open records' reasons in the
read-only *Attention* field."""

from django.contrib import admin, messages
from django.template.response import TemplateResponse

from ccp.admin_mixins import ReadOnlyAdmin, page_context
from ccp.errors import CCPError

from .attention import attention_acknowledge
from .models import Attention
from .selectors import needing_attention


class NeedsAttentionFilter(admin.SimpleListFilter):
    title = "needs attention"
    parameter_name = "needs_attention"

    def lookups(self, request, model_admin):
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request, queryset):
        if self.value() in ("yes", "no"):
            return needing_attention(queryset, self.value() == "yes")
        return queryset


@admin.display(description="Attention")
def attention_column(instance) -> str:
    """Only unresolved records (the changelist prefetches them)."""
    return instance.attention or ""


@admin.action(description="Acknowledge attention (resolve with a note)…", permissions=["operate"])
def acknowledge_attention(modeladmin, request, queryset):
    flagged = list(needing_attention(queryset))
    if not flagged:
        modeladmin.message_user(request, "None of the selected instances needs attention.", messages.WARNING)
        return None
    note = request.POST.get("note", "").strip()
    if request.POST.get("post") == "yes" and note:
        for instance in flagged:
            try:
                resolved = attention_acknowledge(instance=instance, user=request.user, note=note)
                modeladmin.message_user(request, f"{instance}: resolved {len(resolved)} attention record(s).")
            except CCPError as error:
                modeladmin.message_user(request, f"{instance}: {error.message}", messages.ERROR)
        return None
    context = page_context(
        modeladmin,
        request,
        queryset=flagged,
        instances=flagged,
        title="Acknowledge attention",
        note_missing=request.POST.get("post") == "yes",
    )
    return TemplateResponse(request, "admin/instances/instance/acknowledge_attention.html", context)


@admin.register(Attention)
class AttentionAdmin(ReadOnlyAdmin):
    list_display = (
        "instance",
        "raised_at",
        "reason",
        "operation_kind",
        "operation_id",
        "resolved_at",
        "resolved_by",
        "resolution",
    )
    list_filter = (("resolved_at", admin.EmptyFieldListFilter), "operation_kind")
    search_fields = ("instance__slug", "reason", "resolution")
    list_select_related = ("instance", "resolved_by")
