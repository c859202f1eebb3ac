"""Forms of the portal: what a person typed, read leniently (full-width digits and letters,
hyphens, spaces), checked by the API's own request schemas and the domain's rules, and
refusals placed at their field with the seed's Japanese message (the `message_ja` every
DomainError carries, the same the API answers).

A page keeps its form in a `Form`: `values` (what to show back in the fields), `errors`
(field name -> message) and `summary` (the error summary's list, in field order).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from lifecycle.domain.errors import DomainError, InvalidText, ValidationFailed

# What the schema's error types mean to a person filling in the form.
_SCHEMA_MESSAGES = {
    "missing": "入力してください。",
    "string_too_short": "入力してください。",
    "string_too_long": "入力された文字数が上限を超えています。",
    "value_error": "メールアドレスの形式が正しくありません。",
    "invalid_text": InvalidText.message_ja,
}


@dataclass
class Form:
    """One form's state on its page."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    # Set when the page has fields: the order the summary lists their errors in.
    order: tuple[str, ...] = ()
    # Field name -> its label, so that "入力してください" can say which field.
    labels: dict[str, str] = field(default_factory=dict)

    @property
    def summary(self) -> list[tuple[str, str]]:
        ordered = [name for name in self.order if name in self.errors]
        ordered += [name for name in self.errors if name not in ordered]
        return [(name, self.errors[name]) for name in ordered]

    def add(self, name: str, message: str) -> None:
        self.errors.setdefault(name, message)

    @property
    def ok(self) -> bool:
        return not self.errors


def read_form(
    data: FormData | Mapping[str, Any], names: Iterable[str], labels: Mapping[str, str] | None = None
) -> Form:
    """The named text fields as typed (a missing one is empty); files and the CSRF field are left out."""
    names = tuple(names)
    values = {}
    for name in names:
        value = data.get(name, "")
        values[name] = value if isinstance(value, str) else ""
    return Form(values=values, order=names, labels=dict(labels or {}))


def folded(text: str) -> str:
    """Full-width digits, letters and hyphens folded (NFKC), spaces at the ends trimmed: how
    the portal reads a code, a phone or an address someone typed."""
    text = unicodedata.normalize("NFKC", text)
    for dash in ("ー", "−", "‐", "–", "—", "―", "－"):
        text = text.replace(dash, "-")
    return text.strip()


_DASH_BETWEEN_DIGITS = re.compile(r"(?<=\d)[ー−‐–—―－](?=\d)")


def folded_address(text: str) -> str:
    """A street or building as typed: full-width digits and letters folded (NFKC), and a dash
    between digits made a hyphen (千代田１ー１ is 千代田1-1); センター keeps its ー."""
    return _DASH_BETWEEN_DIGITS.sub("-", unicodedata.normalize("NFKC", text)).strip()


def check_schema(
    form: Form, schema: type[BaseModel], data: Mapping[str, Any], fields: Mapping[str, str] | None = None
) -> BaseModel | None:
    """Validates `data` with an API request schema; each refused field gets its message.
    `fields` maps a schema field to its form field when their names differ."""
    fields = fields or {}
    try:
        return schema.model_validate(data)
    except ValidationError as error:
        for problem in error.errors():
            loc = problem.get("loc") or ("",)
            name = fields.get(str(loc[0]), str(loc[0]))
            message = _SCHEMA_MESSAGES.get(problem.get("type", ""), ValidationFailed.message_ja)
            if problem.get("type") == "value_error" and "mail" not in name:
                message = ValidationFailed.message_ja
            if data.get(str(loc[0])) in ("", None) and problem.get("type") != "invalid_text":
                label = form.labels.get(name)
                message = f"{label}を入力してください。" if label else _SCHEMA_MESSAGES["missing"]
            form.add(name, message)
        return None


def place_error(form: Form, error: DomainError, field_of_code: Mapping[str, str], default: str | None = None) -> None:
    """A domain refusal at its field (by its code), else at `default`, else in the summary
    only (field name "")."""
    form.add(field_of_code.get(error.code, default or ""), error.message_ja)


def changed(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """The fields an edit form changes (a PATCH's body)."""
    return {name: value for name, value in after.items() if before.get(name) != value}
