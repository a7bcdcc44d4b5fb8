"""HTML for people: the pieces the gallery page and the notebook views share, and the
notebook views themselves (`_repr_html_` of Task, BatchResult, RequestValidationError).

Everything shown comes through `text()`: control characters and terminal escape sequences
are removed (a reason from the server could carry them) and the rest is HTML-escaped, so
no server text can add markup. No external stylesheets, fonts or scripts: the HTML works
offline, from file://, in a notebook and in any static server.
"""

from __future__ import annotations

import html
import os
import urllib.parse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._text import clean as _clean

if TYPE_CHECKING:
    from .batch import BatchResult
    from .errors import RequestValidationError
    from .tasks import Task

__all__ = ["STATE_COLOURS", "batch_html", "href", "task_html", "text", "validation_html"]

_MAX_TEXT = 2000

STATE_COLOURS = {
    # batch row states and task statuses alike
    "downloaded": "#1a7f37", "succeeded": "#1a7f37",
    "failed": "#cf222e", "ambiguous": "#9a6700",
    "pending": "#57606a", "queued": "#57606a", "unknown": "#57606a",
    "submitting": "#0969da", "submitted": "#0969da", "running": "#0969da",
}


def text(value: Any, limit: int = _MAX_TEXT) -> str:
    """`value` as safe HTML text: escapes stripped, shortened, escaped."""
    # the shared scrubber (escape sequences, controls, bidi overrides): no second copy here
    clean = _clean(str(value))
    if len(clean) > limit:
        clean = clean[: limit - 1] + "…"
    return html.escape(clean, quote=True)


def href(path: str | os.PathLike[str]) -> str:
    """A relative path as an escaped URL for src/href: works from file:// and over HTTP
    (`#`, `?`, `%` and spaces in file names are percent-encoded)."""
    parts = Path(path).as_posix()
    return html.escape(urllib.parse.quote(parts, safe="/"), quote=True)


def badge(state: str) -> str:
    colour = STATE_COLOURS.get(state, "#57606a")
    return (f'<span class="state" data-state="{text(state)}" style="background:{colour};'
            f'color:#fff;border-radius:1em;padding:0 .6em;font-size:.85em">{text(state)}</span>')


def _web_url(url: str | None) -> str | None:
    if url and urllib.parse.urlsplit(url).scheme in ("http", "https"):
        return url
    return None


# ---------------------------------------------------------------------------- notebooks


def task_html(task: Task) -> str:
    """A task as a notebook shows it: id, status, a progress bar, the failure reason, and
    the video once there is one."""
    state = task.status.value
    parts = [
        '<div class="kling-task" style="font-family:sans-serif;max-width:40em">',
        f"<div><b>task {text(task.task_id)}</b> {badge(state)}</div>",
        f'<progress value="{int(task.progress)}" max="100" style="width:100%"></progress>'
        f"<div>{int(task.progress)}%</div>",
    ]
    if task.fail_reason and state == "failed":
        parts.append(f'<div style="color:#cf222e">{text(task.fail_reason)}</div>')
    url = _web_url(task.video_url)
    if url is not None:
        parts.append(f'<video controls preload="metadata" style="max-width:100%" '
                     f'src="{text(url)}"></video>')
    if task.external_task_id:
        parts.append(f'<div style="color:#57606a;font-size:.85em">external id '
                     f"{text(task.external_task_id)}</div>")
    parts.append("</div>")
    return "".join(parts)


def batch_html(result: BatchResult) -> str:
    """A batch result: counts per state, and a table of the rows with each downloaded
    video inline (its file, relative to the notebook's folder)."""
    counts = ", ".join(f"{badge(state.value)} {n}" for state, n in result.counts().items() if n)
    gallery = result.out_dir / "index.html"
    link = (f' · <a href="{href(_relative(gallery))}">gallery</a>' if gallery.exists() else "")
    rows = "".join(_batch_row(result, row) for row in result.rows)
    return (
        '<div class="kling-batch" style="font-family:sans-serif">'
        f"<div><b>batch</b> {text(result.stopped)}: {counts}{link}</div>"
        '<table><thead><tr><th>line</th><th>image</th><th>state</th><th>task</th>'
        f"<th>video or reason</th></tr></thead><tbody>{rows}</tbody></table></div>"
    )


def _batch_row(result: BatchResult, row: Any) -> str:
    if row.state.value == "downloaded":
        cell = (f'<video controls preload="metadata" width="240" '
                f'src="{href(_relative(result.path_of(row)))}"></video>')
    else:
        cell = text(row.reason or "")
    return (f"<tr><td>{int(row.line)}</td><td>{text(row.image, 80)}</td>"
            f"<td>{badge(row.state.value)}</td><td>{text(row.task_id or '')}</td>"
            f"<td>{cell}</td></tr>")


def validation_html(error: RequestValidationError) -> str:
    """Each problem of a refused request as a list item: field, rule, value found."""
    items = "".join(f"<li><code>{text(v.path)}</code>: {text(v.rule)} "
                    f'<span style="color:#57606a">({text(_got(v))})</span>'
                    f"{text('; ' + v.next_step()) if v.next_step() else ''}</li>"
                    for v in error.violations)
    count = len(error.violations)
    return (f'<div class="kling-invalid" style="font-family:sans-serif">'
            f'<b style="color:#cf222e">invalid request</b>, {count} '
            f"problem{'s' if count != 1 else ''} (nothing was sent):<ul>{items}</ul></div>")


def _got(violation: Any) -> str:
    from .errors import MISSING, shorten

    return "missing" if violation.value is MISSING else f"got {shorten(violation.value)}"


def _relative(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return path.as_posix()
