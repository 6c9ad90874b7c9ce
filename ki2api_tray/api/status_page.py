"""The status page at `GET /`: the tray menu's information as a small self-contained HTML page.

No external assets and no secrets (not even the API key: it says where to find it). Every value is
HTML-escaped; the page reloads itself every 5 seconds.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from .. import __version__
from ..i18n import Translator, choose_language
from ..state import Status
from ..wording import (
    Level,
    duration_text,
    level_of,
    login_line,
    quota_line,
    requests_line,
    status_line,
    token_line,
)

REFRESH_SECONDS = 5

_COLOURS = {Level.OK: "#22c55e", Level.WARN: "#f59e0b", Level.BAD: "#ef4444", Level.OFF: "#9ca3af"}

_STYLE = """
:root { color-scheme: light dark; --bg: #f6f5fb; --card: #fff; --text: #1f2330; --muted: #6b7080;
  --line: #e4e2ee; --accent: #7c3aed; --code: #f1eefb; }
@media (prefers-color-scheme: dark) { :root { --bg: #15141b; --card: #1f1e27; --text: #ecebf3;
  --muted: #9d9bab; --line: #2f2d3a; --accent: #a78bfa; --code: #2a2838; } }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", "PingFang SC", "Microsoft YaHei",
  sans-serif; background: var(--bg); color: var(--text); }
main { max-width: 760px; margin: 0 auto; padding: 32px 20px 48px; }
header { display: flex; align-items: center; gap: 14px; margin-bottom: 24px; }
.logo { width: 44px; height: 44px; border-radius: 11px; background: linear-gradient(#8b5cf6, #5b21b6);
  color: #fff; font-weight: 800; font-size: 24px; display: grid; place-items: center; position: relative; }
.logo i { position: absolute; right: -4px; bottom: -4px; width: 18px; height: 18px; border-radius: 50%;
  border: 3px solid var(--bg); background: var(--level); }
h1 { font-size: 20px; margin: 0; }
.status { color: var(--muted); margin: 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 14px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 16px 18px; }
h2 { font-size: 12px; text-transform: uppercase; letter-spacing: .06em; color: var(--muted); margin: 0 0 6px; }
.big { font-size: 17px; font-weight: 600; margin: 0; }
.small { color: var(--muted); font-size: 13px; margin: 4px 0 0; overflow-wrap: anywhere; }
.bar { height: 6px; border-radius: 3px; background: var(--line); margin-top: 10px; overflow: hidden; }
.bar span { display: block; height: 100%; background: var(--accent); }
.wide { grid-column: 1 / -1; }
.error { border-color: #ef4444; }
code, pre { font: 13px/1.5 ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; background: var(--code);
  border-radius: 6px; }
code { padding: 2px 6px; }
pre { padding: 10px 12px; overflow-x: auto; margin: 6px 0 12px; }
footer { color: var(--muted); font-size: 12px; margin-top: 20px; text-align: center; }
"""


def render_status_page(
    status: Status,
    *,
    base_url: str,
    language: str,
    config_file: str = "config.json",
    now: datetime | None = None,
) -> str:
    """The whole page as one HTML string; `base_url` is what clients use (e.g. http://127.0.0.1:8989/v1).

    `language` is a setting value: "en", "zh" or "auto" (the OS locale).
    """
    tr = Translator(choose_language(language))
    now = now or datetime.now().astimezone()
    level = level_of(status)
    root_url = base_url.removesuffix("/v1")
    token = status.token
    token_extra = "".join(
        f'<p class="small">{escape(text)}</p>'
        for text in (
            login_line(token, tr),
            token.detail,
            tr("page.source", source=token.source) if token.source else "",
            tr("page.profile", arn=token.profile_arn) if token.profile_arn else "",
            token.note,
        )
        if text
    )
    if token.support_url:
        # Kiro suspended the account: its support page is the one thing that helps (kiro-protocol-2026.md §7).
        token_extra += (
            f'<p class="small"><a href="{escape(token.support_url)}">{escape(tr("menu.open_support"))}</a></p>'
        )
    last = (
        tr("page.ago", duration=_ago(now, status.last_request_at, tr)) if status.last_request_at else tr("page.never")
    )
    totals = tr("page.totals", total=f"{status.requests_total:,}", errors=f"{status.errors_total:,}", last=last)
    sections = [
        _section(tr("page.server"), status_line(status, tr).lstrip("●○ "), f'<p class="small">{escape(root_url)}</p>'),
        _section(tr("page.token"), token_line(token, tr, now), token_extra, css=_token_css(level)),
        _section(
            tr("page.requests"),
            requests_line(status, tr),
            # One translated sentence: Chinese punctuation (full-width colons) differs from English.
            f'<p class="small">{escape(totals)}</p>',
        ),
        _section(tr("page.quota"), quota_line(status.quota, tr), _quota_bar(status)),
    ]
    if status.last_error:
        sections.append(_section(tr("page.last_error"), status.last_error, "", css="wide error"))
    connect = f"""
<section class="wide">
  <h2>{escape(tr("page.connect"))}</h2>
  <p>{escape(tr("page.openai_hint"))}</p>
  <pre>{escape(base_url)}</pre>
  <p>{escape(tr("page.anthropic_hint"))}</p>
  <pre>{escape(root_url)}</pre>
  <p class="small">{escape(tr("page.key_hint", config=config_file))}</p>
  <pre>curl {escape(base_url)}/models -H "Authorization: Bearer $API_KEY"</pre>
  <p class="small">{escape(tr("page.web_hint"))}</p>
  <pre>KI2API_ALLOWED_ORIGINS=https://chat.example.com ki2api-tray</pre>
</section>"""
    html_lang = "zh-CN" if tr.language == "zh" else "en"
    return f"""<!DOCTYPE html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="{REFRESH_SECONDS}">
<title>{escape(tr("page.title"))}</title>
<style>{_STYLE}</style>
</head>
<body>
<main style="--level: {_COLOURS[level]}">
<header>
  <div class="logo" aria-hidden="true">K<i></i></div>
  <div><h1>ki2api</h1><p class="status">{escape(tr("page.title"))} · {escape(__version__)}</p></div>
</header>
<div class="grid">
{"".join(sections)}
{connect}
</div>
<footer>{escape(tr("page.refresh_note"))}</footer>
</main>
</body>
</html>
"""


def _section(title: str, headline: str, extra: str, css: str = "") -> str:
    class_attr = f' class="{css}"' if css else ""
    return f'<section{class_attr}><h2>{escape(title)}</h2><p class="big">{escape(headline)}</p>{extra}</section>\n'


def _token_css(level: Level) -> str:
    return "error" if level is Level.BAD else ""


def _quota_bar(status: Status) -> str:
    quota = status.quota
    if quota is None or quota.limit <= 0:
        return ""
    percent = max(0.0, min(100.0, quota.remaining / quota.limit * 100))
    return f'<div class="bar"><span style="width: {percent:.0f}%"></span></div>'


def _ago(now: datetime, then: datetime, tr: Translator) -> str:
    return duration_text((now - then).total_seconds(), tr)
