"""A very small SVG writer: elements with escaped attributes and text, nothing else."""

from __future__ import annotations

from markupsafe import Markup, escape

Attr = str | int | float | None


def _value(value: Attr) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def el(tag: str, attrs: dict[str, Attr] | None = None, *children: str) -> str:
    """`<tag attrs>children</tag>`; attribute names use `_` for `-`, None values are left out."""
    pairs = "".join(
        f' {name.rstrip("_").replace("_", "-")}="{escape(_value(value))}"'
        for name, value in (attrs or {}).items()
        if value is not None
    )
    if not children:
        return f"<{tag}{pairs}/>"
    return f"<{tag}{pairs}>{''.join(children)}</{tag}>"


def text(x: float, y: float, content: str, **attrs: Attr) -> str:
    """A text element; `content` is escaped."""
    return el("text", {"x": x, "y": y, **attrs}, str(escape(content)))


def title(content: str) -> str:
    """A tooltip for the enclosing element (read by screen readers too)."""
    return el("title", None, str(escape(content)))


def document(width: float, height: float, label: str, description: str, *children: str, css_class: str) -> Markup:
    """A complete inline `<svg>` labelled for assistive technology."""
    body = el("title", None, str(escape(label))) + el("desc", None, str(escape(description)))
    svg = el(
        "svg",
        {
            "xmlns": "http://www.w3.org/2000/svg",
            "viewBox": f"0 0 {_value(width)} {_value(height)}",
            "width": width,
            "height": height,
            "role": "img",
            "class": css_class,
            "font_family": "system-ui, sans-serif",
        },
        body,
        *children,
    )
    return Markup(svg)  # noqa: S704 - every text and attribute above was escaped
