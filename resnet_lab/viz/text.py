"""User text in plotly figures, shown as text.

Plotly.js draws every string of a figure (trace names, axis categories and tick labels, ``text``, titles,
annotations, hover labels) as pseudo-HTML: ``<b>``, ``<i>``, ``<br>``, ``<a href=…>`` and
``<span style=…>`` take effect. It splits a string on its tags first and then turns the HTML entities of
the text between them back into characters (named ``&amp;`` ``&lt;`` ``&gt;`` and any numeric ``&#…;``), so
an escaped string is drawn exactly as it was typed. A ``hovertemplate`` is also scanned for ``%{…}``
fields (``/%{([^\\s%{}:]*)([:|\\|][^}]*)?}/``) before it is drawn; plotly documents no escape for a
literal ``%{``, so user text placed *inside* a template has its ``%`` written as the entity ``&#37;``,
which no field matches and which is drawn as ``%``.

Values substituted into a template (``%{x}``, ``%{text}``, ``%{customdata}``) are not scanned again, but
they are drawn as pseudo-HTML too: a category, text or customdata string from a user goes through
:func:`plain`.

Both functions are undone by :func:`html.unescape`. Only user text is escaped; the markup the code itself
writes (``<br>`` separators, ``<extra></extra>``, ``%{y:.4g}`` fields) is left as it is.
"""

from __future__ import annotations

import html

__all__ = ["plain", "plain_template"]


def plain(s: object) -> str:
    """A user string (a run, model, class or file name) for a trace name, legend group, axis category, tick
    label, ``text`` or title: ``&``, ``<`` and ``>`` as HTML entities, so plotly shows it literally."""
    return html.escape(str(s), quote=False)


def plain_template(s: object) -> str:
    """A user string for the inside of a ``hovertemplate``: :func:`plain`, and every ``%`` as ``&#37;`` so
    that nothing in it (``%{y}``, ``%{customdata[0]}``) is read as a template field."""
    return plain(s).replace("%", "&#37;")
