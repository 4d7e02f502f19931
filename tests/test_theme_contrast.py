"""Both themes of static/fleetui.css meet WCAG AA: every colour pair used as
text on a background has a contrast ratio of at least 4.5:1, in the light and
in the dark theme. The colours are read from the stylesheet itself (each
variable is `light-dark(<light>, <dark>)`), so a colour changed there is
checked here."""

import re
from pathlib import Path

import pytest

CSS = Path(__file__).resolve().parent.parent / "static" / "fleetui.css"
AA = 4.5
STATES = ("pending", "updating", "succeeded", "failing", "rejected", "waiting", "skipped", "stopped")
NOTES = ("ok", "bad", "warn", "info")
# Colours used for text directly on the page or on a soft panel (links, the live line, messages).
TEXT = ("fg", "muted", "accent", "ok", "warn", "bad", "info")

PAIRS = [
    *[(f"state-{s}", f"state-{s}-bg") for s in STATES],
    *[(f"state-{s}", page) for s in STATES for page in ("bg", "soft")],
    *[(f"note-{n}", f"note-{n}-bg") for n in NOTES],
    *[(text, page) for text in TEXT for page in ("bg", "soft")],
    ("button-fg", "button"), ("button-fg", "button-ok"), ("button-fg", "button-bad"),
    ("fg", "note-warn-bg"), ("accent", "note-info-bg"),
]

HEX = r"#[0-9a-fA-F]{6}|#[0-9a-fA-F]{3}"
VARIABLE = re.compile(rf"--([a-z0-9-]+):\s*light-dark\(\s*({HEX})\s*,\s*({HEX})\s*\)")


def themes(css: str) -> dict[str, dict[str, str]]:
    """{"light": {name: "#rrggbb"}, "dark": {...}} from the light-dark() variables."""
    found = VARIABLE.findall(css)
    return {"light": {name: light for name, light, _ in found}, "dark": {name: dark for name, _, dark in found}}


def luminance(colour: str) -> float:
    """WCAG 2 relative luminance of #rgb or #rrggbb."""
    digits = colour.lstrip("#")
    if len(digits) == 3:
        digits = "".join(c * 2 for c in digits)
    channels = [int(digits[i:i + 2], 16) / 255 for i in (0, 2, 4)]
    r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def contrast(a: str, b: str) -> float:
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_the_contrast_formula_matches_wcag_examples():
    assert contrast("#000", "#fff") == pytest.approx(21.0)
    assert contrast("#fff", "#fff") == pytest.approx(1.0)
    assert contrast("#767676", "#ffffff") == pytest.approx(4.54, abs=0.01)  # the lightest AA grey on white


def test_a_pair_below_aa_is_caught():
    bad = themes(":root { --x: light-dark(#777777, #ffffff); --y: light-dark(#ffffff, #000000); }")
    assert contrast(bad["light"]["x"], bad["light"]["y"]) < AA
    assert contrast(bad["dark"]["x"], bad["dark"]["y"]) >= AA


def test_every_colour_the_pairs_use_is_a_light_dark_variable():
    colours = themes(CSS.read_text())
    names = {name for pair in PAIRS for name in pair}
    for theme in ("light", "dark"):
        assert names <= colours[theme].keys(), f"{theme}: missing {sorted(names - colours[theme].keys())}"


@pytest.mark.parametrize("theme", ["light", "dark"])
def test_every_state_and_text_colour_meets_wcag_aa_on_its_background(theme):
    colours = themes(CSS.read_text())[theme]
    failing = [f"--{fg} on --{bg}: {contrast(colours[fg], colours[bg]):.2f}:1"
               for fg, bg in PAIRS if contrast(colours[fg], colours[bg]) < AA]
    assert not failing, f"{theme} theme below {AA}:1: " + "; ".join(failing)
