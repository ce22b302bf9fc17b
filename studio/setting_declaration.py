"""How a setting of the Settings page is declared, and what is built from a
table of declarations.

A :class:`SettingField` says where a value lives in ``kg.schema.Settings``,
its label and help, the widget that edits it, where it sits on the page, and
how a saved value becomes the widget's and back. From a table of them come
the widgets' values (:func:`widget_values`), the save input
(:func:`settings_input`), the names problems are reported under
(:func:`problem_label`) and the page's arrangement (:func:`layout`); the table
itself is ``studio.settings_fields.FIELDS``.

Bounds, choices and numeric types come from the pydantic model's own field
constraints (``ge``/``gt``/``le``, ``Literal`` values), never repeated in a
declaration. Data and pure functions only: no Streamlit, no torch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from types import NoneType, UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from kg.schema import Settings

__all__ = [
    "Group",
    "Section",
    "SettingField",
    "field_info",
    "layout",
    "problem_label",
    "settings_input",
    "settings_key",
    "widget_values",
]

WidgetKind = Literal["select", "multiselect", "number", "checkbox", "text", "text_area"]
# Which of the model's bounds the widget enforces itself. "none" lets any number
# through, so validation can name the field and the nearest valid value.
Bounds = Literal["none", "lower", "both"]
# "model": the values of the field's Literal type; "backends": the backends this
# machine offers, plus the saved one (so a story from elsewhere still shows it).
Choices = Literal["model", "backends"]
Row = list["SettingField"]


def settings_key(key: str) -> str:
    """The session-state key of the widget of the field named ``key``."""
    return f"settings.{key}"


@dataclass(frozen=True)
class Section:
    """A heading of the page; ``path`` names the sub-model it edits, where a
    problem with that sub-model as a whole is reported as ``problem_label``."""

    title: str
    caption: str = ""
    path: str = ""
    problem_label: str = ""


@dataclass(frozen=True)
class Group:
    """Fields folded into an expander, under a table of facts about them."""

    title: str
    table: Callable[[], dict[str, list[str]]] | None = None


@dataclass(frozen=True)
class SettingField:
    """One setting on the page.

    ``key`` names the widget (``settings.<key>``) and the form's value;
    ``path`` is the dotted path into ``Settings``. Fields sharing a ``row``
    sit side by side in one row, ``width`` their share of it; a field without
    a row has one of its own. ``help`` may say ``{range}``: the model's
    ``ge`` to ``le``. ``to_widget`` turns the saved value into the widget's,
    ``to_setting`` the widget's into what is validated and saved (defaults:
    the number type, a list for multiselects, else unchanged).
    """

    key: str
    path: str
    label: str
    help: str
    widget: WidgetKind
    section: Section
    row: str = ""
    width: int = 1
    group: Group | None = None
    step: float | None = None
    format: str | None = None
    bounds: Bounds = "none"
    choices: Choices = "model"
    placeholder: str | None = None
    height: int | None = None
    named: str = ""  # how problems name it; default: the path, "_" as spaces
    to_widget: Callable[[Any], Any] | None = None
    to_setting: Callable[[Any], Any] | None = None

    def __post_init__(self) -> None:
        field_info(self.path)  # a path Settings lacks fails here, on import

    @property
    def widget_key(self) -> str:
        return settings_key(self.key)

    @property
    def problem_label(self) -> str:
        return self.named or self.path.replace("_", " ")

    @property
    def help_text(self) -> str:
        if "{range}" not in self.help:
            return self.help
        low, high = _bound(self, "ge"), _bound(self, "le")
        return self.help.replace("{range}", f"{low:g} to {high:g}")

    def number_type(self) -> type:
        """``int`` or ``float``, as the model declares the field."""
        kind, _ = _unwrap(field_info(self.path))
        assert kind in (int, float), f"{self.path} is {kind}, not a number"
        return kind

    def number_step(self) -> float | None:
        return None if self.step is None else self.number_type()(self.step)

    def number_bounds(self) -> tuple[float | None, float | None]:
        """``min_value`` and ``max_value`` of the widget, from the model."""
        if self.bounds == "none":
            return None, None
        cast = self.number_type()
        low = _bound(self, "ge")
        if low is None and (above := _bound(self, "gt")) is not None:
            assert self.step, f"{self.key}: an open lower bound needs a step"
            low = above + self.step  # the first step above the open bound
        high = _bound(self, "le") if self.bounds == "both" else None
        return (
            None if low is None else cast(low),
            None if high is None else cast(high),
        )

    def options(self, backends: Sequence[str], current: Any) -> list[str]:
        """What a select or multiselect offers."""
        if self.choices == "backends":
            return list(dict.fromkeys([*backends, current]))
        kind, _ = _unwrap(field_info(self.path))
        if get_origin(kind) is list:
            (kind,) = get_args(kind)
        assert get_origin(kind) is Literal, f"{self.path} has no Literal choices"
        return list(get_args(kind))

    def widget_value(self, saved: Any) -> Any:
        if self.to_widget is not None:
            return self.to_widget(saved)
        if self.widget == "number":
            return self.number_type()(saved)
        if self.widget == "checkbox":
            return bool(saved)
        return list(saved) if self.widget == "multiselect" else saved

    def setting_value(self, shown: Any) -> Any:
        if self.to_setting is not None:
            return self.to_setting(shown)
        return list(shown) if self.widget == "multiselect" else shown


def field_info(path: str) -> FieldInfo:
    """The pydantic field at dotted ``path`` of ``Settings``."""
    model: Any = Settings
    *parents, leaf = path.split(".")
    for name in parents:
        info = model.model_fields.get(name)
        model = info.annotation if info else None
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise KeyError(f"{name!r} of {path!r} is not a part of Settings")
    if leaf not in model.model_fields:
        raise KeyError(f"Settings has no field {path!r}")
    return model.model_fields[leaf]


def _unwrap(info: FieldInfo) -> tuple[Any, list[Any]]:
    """The field's type without ``None``, and its constraints (``Ge``, ``Le``...)."""
    kind, metadata = info.annotation, list(info.metadata)
    if get_origin(kind) in (Union, UnionType):
        (kind,) = [a for a in get_args(kind) if a is not NoneType]
    if get_origin(kind) is Annotated:
        kind, *extra = get_args(kind)
        for item in extra:
            metadata.extend(item.metadata if isinstance(item, FieldInfo) else [item])
    return kind, metadata


def _bound(field: SettingField, name: str) -> float | None:
    _, metadata = _unwrap(field_info(field.path))
    found = [getattr(m, name) for m in metadata if getattr(m, name, None) is not None]
    return found[0] if found else None


# Built from a table ---------------------------------------------------------------


def widget_values(settings: Settings, fields: Sequence[SettingField]) -> dict[str, Any]:
    """Each field's widget value for the saved ``settings``, by field key."""
    return {f.key: f.widget_value(_get(settings, f.path)) for f in fields}


def settings_input(
    current: Settings, values: dict[str, Any], fields: Sequence[SettingField]
) -> dict[str, Any]:
    """What to validate as the new settings: ``current`` with the form's
    ``values`` (by field key) put in place; settings not on the page kept."""
    data = current.model_dump()
    for field in fields:
        *parents, leaf = field.path.split(".")
        node = data
        for name in parents:
            node = node[name]
        node[leaf] = field.setting_value(values[field.key])
    return data


def problem_label(path: str, fields: Sequence[SettingField]) -> str:
    """How the page names a problem at ``path`` (``decay.rate``, ``windows``)."""
    for field in fields:
        if field.path == path:
            return field.problem_label
    for field in fields:
        if field.section.path == path:
            return field.section.problem_label
    return path.replace("_", " ")


def layout(
    fields: Sequence[SettingField],
) -> list[tuple[Section, list[tuple[Group | None, list[Row]]]]]:
    """The page's sections, each made of blocks: a group with its rows, or one
    row outside any group (``None``); all in the table's order of first
    appearance, so a field joins its section, group and row wherever it is."""
    return [
        (in_section[0].section, [(_group(b), _grouped(b, _row)) for b in blocks])
        for in_section in _grouped(fields, lambda f: f.section)
        for blocks in [_grouped(in_section, _block)]
    ]


def _row(field: SettingField) -> str:
    return field.row or f"field:{field.key}"


def _block(field: SettingField) -> Group | str:
    return field.group or _row(field)


def _group(block: Row) -> Group | None:
    return block[0].group


def _grouped(
    fields: Iterable[SettingField], key: Callable[[SettingField], Any]
) -> list[Row]:
    groups: dict[Any, Row] = {}
    for field in fields:
        groups.setdefault(key(field), []).append(field)
    return list(groups.values())


def _get(settings: BaseModel, path: str) -> Any:
    value: Any = settings
    for name in path.split("."):
        value = getattr(value, name)
    return value
