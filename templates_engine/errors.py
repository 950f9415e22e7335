"""Errors of the template engine. Their root, TemplateEngineError, is the engine's own: the engine imports
nothing of the panel. The panel turns them into its CCPError where it calls the engine
(instances.template_errors), so adapters show their sentence to the operator."""


class TemplateEngineError(Exception):
    """An error with a sentence an operator can read (`message`)."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class TemplateSetError(TemplateEngineError):
    """A template set is missing or its manifest is invalid: a packaging mistake, not a tenant's."""


class RenderError(TemplateEngineError):
    """Rendering failed. Names the template file, the line and (for a missing value) the variable."""

    def __init__(self, message: str, *, template: str = "", line: int | None = None, variable: str = ""):
        super().__init__(message)
        self.template = template
        self.line = line
        self.variable = variable


class UnsafePathError(RenderError):
    """A path would leave the instance directory (absolute, `..`, or through a symlink)."""


class EnvFileError(TemplateEngineError):
    """A .env file has a line that neither compose nor we can read."""


class ComposeFileError(TemplateEngineError):
    """A compose file is not YAML, or has a variable reference compose would reject."""
