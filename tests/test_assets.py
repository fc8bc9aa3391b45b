"""Stylesheets flattened at start-up: an engine without custom properties finds the light theme's
values in a plain declaration before each var() one; a modern engine still takes the themed one."""
from __future__ import annotations

import re

import pytest

from chat.assets import Assets, StylesheetError, flatten_css

SHEET = """/* a comment { with braces; } */
:root { --fg: #111; --bg: #fafafa; --line: var(--fg); }
@media (prefers-color-scheme: dark) { :root { --fg: #eee; } }
body { color: var(--fg); margin: 0 }
a:hover { border: 1px solid var(--line); background: var(--missing, #fff) }
@media (max-width: 30rem) { .x { outline: 2px solid var(--bg); padding: 1px; } }
"""


def test_each_var_declaration_gets_the_light_value_before_it() -> None:
    flat = flatten_css(SHEET)
    assert "color: #111; color: var(--fg);" in flat
    assert "border: 1px solid #111; border: 1px solid var(--line)" in flat  # a property naming another
    assert "background: #fff; background: var(--missing, #fff)" in flat  # var()'s own fallback
    assert "outline: 2px solid #fafafa; outline: 2px solid var(--bg);" in flat
    assert "margin: 0 }" in flat and "padding: 1px;" in flat
    assert "comment" not in flat
    assert ":root { --fg: #eee; }" in flat  # the dark theme's values stay as they were


def test_an_undefined_custom_property_is_refused_at_start_up() -> None:
    with pytest.raises(StylesheetError, match=r"var\(--nope\)"):
        flatten_css(":root { --a: #000; }\np { color: var(--nope); }", "css/x.css")


def test_served_stylesheets_have_a_plain_declaration_before_every_var_one() -> None:
    assets = Assets.build()
    for name in ("css/sealchat.css", "css/kiosk.css"):
        text = assets[name].body.decode("utf-8")
        declarations = re.findall(r"(?<=[{;])\s*([a-z-]+)\s*:\s*([^;{}]*?)\s*(?=[;}])", text)
        for i, (prop, value) in enumerate(declarations):
            if "var(" in value:
                before_prop, before_value = declarations[i - 1]
                assert before_prop == prop and "var(" not in before_value, (name, prop, value)
        assert not re.search(r"(?<![-\w])gap\s*:", text), name
