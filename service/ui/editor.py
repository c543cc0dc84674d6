"""The line numbers beside the definition editor, drawn without a script (the UI has none).

The editor is a `<textarea>` whose background is this SVG, attached to its content
(`background-attachment: local`), so the numbers scroll with the text. The SVG's metrics are the
textarea's in carepath.css (`textarea.editor`): change them together.
"""

from __future__ import annotations

import functools

LINE_HEIGHT_PX = 20  # textarea.editor line-height
TOP_PX = 8  # textarea.editor padding-top
GUTTER_PX = 44  # textarea.editor padding-left is this plus a gap
BASELINE_PX = 14  # where a 12 px digit sits within its 20 px line
NUMBERED_LINES = 4000  # the shipped definition has about 700 lines; beyond this the gutter is blank


@functools.cache
def gutter_svg() -> str:
    """An SVG column of line numbers 1..NUMBERED_LINES, right-aligned, one per editor line."""
    height = TOP_PX + LINE_HEIGHT_PX * NUMBERED_LINES
    numbers = "".join(
        f'<text x="{GUTTER_PX - 8}" y="{TOP_PX + LINE_HEIGHT_PX * index + BASELINE_PX}">{index + 1}</text>'
        for index in range(NUMBERED_LINES)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{GUTTER_PX}" height="{height}">'
        f'<rect width="{GUTTER_PX}" height="{height}" fill="#eef2f6"/>'
        f'<g font-family="DejaVu Sans Mono, monospace" font-size="12" fill="#52606d" text-anchor="end">{numbers}</g>'
        "</svg>"
    )
