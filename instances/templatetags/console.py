"""Template filters of the console pages: `{% load console %}`."""

from django import template

from ccp.badges import badge as badge_html
from ccp.badges import first_sentence as first_sentence_text

register = template.Library()


@register.filter
def first_sentence(error: str) -> str:
    return first_sentence_text(error)


@register.filter
def badge(value: str, label: str | None = None):
    return badge_html(value, label)
