"""The one Jinja environment every template of synthkit renders in: sandboxed, so a template cannot reach Python
internals, and strict, so a misspelt variable fails loudly instead of rendering as an empty string. A template's
mistakes are one-line errors naming where it is (`task text_retrieval: prompt ...`)."""

import functools
from collections.abc import Mapping
from typing import Any

from jinja2 import StrictUndefined, TemplateSyntaxError, UndefinedError
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from synthkit.core.errors import UserError
from synthkit.spec.fence import Fence


def _fenced(text) -> str:
    """`{{ passage | fenced }}`: text shown as data (a corpus chunk, an earlier answer) between tags it cannot close,
    so a chunk holding `</passage>` and instructions cannot pass for the prompt's own words."""
    text = str(text)
    return Fence(text).wrap(text)


_ENVIRONMENT = ImmutableSandboxedEnvironment(undefined=StrictUndefined, keep_trailing_newline=True)
_ENVIRONMENT.filters["fenced"] = _fenced


def compile_template(source: Any, where: str, what: str = "prompt"):
    """The compiled template; `where` and `what` name it in errors ("task X", "prompt")."""
    if not isinstance(source, str):
        raise UserError(f"{where}: {what} must be a template string (not {type(source).__name__})")
    try:
        return _compiled(source)
    except TemplateSyntaxError as e:
        raise UserError(f"{where}: {what} template line {e.lineno}: {e.message}") from None
    except RecursionError as e:
        raise UserError(f"{where}: {what} must be a template string ({e})") from None


# A recipe makes a TaskSpec per cell (hundreds), nearly all with the same prompt: compiling takes milliseconds.
@functools.lru_cache(maxsize=256)
def _compiled(source: str):
    return _ENVIRONMENT.from_string(source)


def render(template, variables: Mapping[str, Any], where: str, what: str = "prompt") -> str:
    try:
        return template.render(variables)
    except UndefinedError as e:
        raise UserError(
            f"{where}: the {what} uses an unknown variable ({e.message}); declare it as an attribute"
        ) from None
    except SecurityError as e:
        raise UserError(
            f"{where}: the {what} template does something the sandbox refuses ({e}); a {what} may only use its "
            "attributes"
        ) from None
    except Exception as e:  # a template is user code: any failure of it is the template's
        raise UserError(f"{where}: the {what} template failed to render ({type(e).__name__}: {e})") from None
