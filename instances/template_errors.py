"""Where the panel calls the template engine, the engine's errors become the panel's.

The engine is pure and has its own error root (templates_engine.TemplateEngineError); admin, API,
commands and the upgrade runner catch CCPError. Every function of `instances` or `upgrades` that calls
into the engine is wrapped in `engine_errors`, so an engine error reaches them as a TemplateProblem
with the same sentence (and the original as its cause).
"""

from contextlib import contextmanager

from ccp.errors import CCPError
from templates_engine import TemplateEngineError


class TemplateProblem(CCPError):
    """A template set, a render, or a tenant's .env or compose file the engine could not use."""


@contextmanager
def engine_errors():
    """`with engine_errors():` or `@engine_errors()`: an engine error is re-raised as a TemplateProblem."""
    try:
        yield
    except TemplateEngineError as error:
        raise TemplateProblem(error.message) from error
