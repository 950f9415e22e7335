"""Errors of the template engine. All are CCPError, so adapters show their message to the operator."""

from ccp.errors import CCPError


class TemplateSetError(CCPError):
    """A template set is missing or its manifest is invalid: a packaging mistake, not a tenant's."""


class RenderError(CCPError):
    """Rendering failed. Names the template file, the line and (for a missing value) the variable."""

    def __init__(self, message: str, *, template: str = "", line: int | None = None, variable: str = ""):
        super().__init__(message)
        self.template = template
        self.line = line
        self.variable = variable


class UnsafePathError(RenderError):
    """A path would leave the instance directory (absolute, `..`, or through a symlink)."""


class EnvFileError(CCPError):
    """A .env file has a line that neither compose nor we can read."""


class ComposeFileError(CCPError):
    """A compose file is not YAML, or has a variable reference compose would reject."""
