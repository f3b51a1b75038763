"""App form fields for config keys, made from their declarations in :mod:`fiftyone_genre.config`.

A key declared with ``form="Label"`` becomes a field of its stage's form:
a dropdown for a key with choices or names, a radio group plus a file field
for a key with presets (``weights``: DEFAULT, none or a file), else a
number, switch or text field. Its description is the key's help, its
default the value of the config the form starts from. :func:`setting_overrides`
turns the filled-in fields back into a config section (empty fields keep
the base's values); the config's own checks then judge the values.
"""

from __future__ import annotations

import fiftyone.operators.types as types

from fiftyone_genre.schema import Declared, base_type, declared

from .common import Form, expand_path, path_problem

#: The radio choice of a key with presets that means "a file path" (then ``<key>_path`` holds it).
PATH_CHOICE = "path"


def _label(d: Declared) -> str:
    return f"{d.spec.form} (optional)" if d.default is None else str(d.spec.form)


def _preset_inputs(form: Form, d: Declared, value) -> None:
    """A radio group of the presets plus "a file", and the file field when that is chosen."""
    names = [v for v, _ in d.spec.presets]
    chosen = value if value in names else PATH_CHOICE
    radio = types.RadioGroup()
    for name, label in d.spec.presets:
        radio.add_choice(name, label=label)
    radio.add_choice(PATH_CHOICE, label=f"A {d.spec.path} on the server")
    form.inputs.enum(d.name, radio.values(), default=chosen, label=_label(d), description=d.spec.help,
                     view=types.RadioView(choices=radio.choices))
    if form.params.get(d.name, chosen) == PATH_CHOICE:
        path = form.params.get(f"{d.name}_path")
        form.field("str", f"{d.name}_path", path_problem(path, must_be_file=d.spec.path == "file"), required=True,
                   default=value if chosen == PATH_CHOICE else None, label=f"{d.spec.form}: {d.spec.path} path",
                   description=f"A {d.spec.path} on the server machine.")


def add_setting_inputs(form: Form, cls: type, base) -> None:
    """A field for every key of section ``cls`` declared with ``form``, defaulting to ``base``'s value."""
    for d in declared(cls):
        if not d.spec.form:
            continue
        value, hint = getattr(base, d.name), base_type(d.hint)
        common = dict(default=value, label=_label(d), description=d.spec.help)
        if d.spec.presets:
            _preset_inputs(form, d, value)
        elif d.spec.choices or d.spec.names_from:
            form.inputs.enum(d.name, list(d.spec.names()), view=types.DropdownView(), **common)
        elif hint in (int, float, bool):
            getattr(form.inputs, hint.__name__)(d.name, **common)
        else:
            form.inputs.str(d.name, **common)


def setting_overrides(params: dict, cls: type) -> dict:
    """The filled-in fields of section ``cls`` as a section dict (empty fields are left out)."""
    overrides: dict = {}
    for d in declared(cls):
        value = params.get(d.name) if d.spec.form else None
        if value is None or value == "":
            continue
        if d.spec.presets and value == PATH_CHOICE:
            value = expand_path(params.get(f"{d.name}_path"))
        elif d.spec.path:
            value = expand_path(value)
        elif base_type(d.hint) is int:
            value = int(value)  # the App sends numbers as floats
        if value is not None:
            overrides[d.name] = value
    return overrides
