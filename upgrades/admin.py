from django.contrib import admin

from .models import Release


@admin.register(Release)
class ReleaseAdmin(admin.ModelAdmin):
    list_display = ("version", "image_tag", "template_set", "is_default", "created_at")
    list_filter = ("template_set", "is_default")
    search_fields = ("version", "image_tag", "notes")
    readonly_fields = ("created_at",)
