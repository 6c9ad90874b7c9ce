"""The status page at `GET /`: the tray's information as cards, and a usage dashboard drawn in the browser.

One self-contained page: the style, the script and the dashboard's words come from `static/` inside the
package and are inlined, so nothing is fetched from elsewhere. The cards are rendered here (every value
HTML-escaped); the dashboard script fills in charts and the request table from the key-protected
`/api/usage` and `/api/requests`, and refreshes the cards by fetching this page again, so nothing needs a
full reload. The API key appears only when it is the public default; a custom key is asked for in the page.

To add a line to the page, add a card to `cards()` (or a `<p class="small">` to an existing one).
"""

from __future__ import annotations

import functools
import json
from datetime import datetime
from html import escape
from importlib import resources
from typing import Any

from .. import __version__
from ..i18n import LANGUAGES, Translator, choose_language, language_from_accept
from ..state import Status, TokenHealth
from ..wording import (
    Level,
    account_line,
    date_text,
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


@functools.cache
def _static(name: str) -> str:
    return resources.files(__package__).joinpath("static").joinpath(name).read_text(encoding="utf-8")


def dashboard_strings(language: str) -> dict[str, str]:
    strings: dict[str, str] = json.loads(_static(f"dashboard.{language}.json"))
    return strings


def page_language(setting: str, *, accept_language: str = "", asked: str = "") -> str:
    """`?lang=` wins, then the browser's Accept-Language, then the setting ("auto" follows the OS)."""
    if asked in LANGUAGES:
        return asked
    return language_from_accept(accept_language) or choose_language(setting)


def render_status_page(
    status: Status,
    *,
    base_url: str,
    language: str,
    config_file: str = "config.json",
    now: datetime | None = None,
    public_key: str | None = None,
) -> str:
    """The whole page as one HTML string; `base_url` is what clients use (e.g. http://127.0.0.1:8989/v1).

    `language` is "en", "zh" or "auto" (the OS locale). `public_key` is the API key when it is the public
    default (then it is shown plainly and the dashboard uses it); None for a custom key, which stays hidden.
    """
    tr = Translator(choose_language(language))
    now = now or datetime.now().astimezone()
    level = level_of(status)
    root_url = base_url.removesuffix("/v1")
    other = "zh" if tr.language == "en" else "en"
    config = {
        "lang": tr.language,
        "key": public_key,
        "refresh": REFRESH_SECONDS,
        "strings": dashboard_strings(tr.language),
        "months": tr("date.month_names").split(),
        "date": tr.template("date.short"),
    }
    html_lang = "zh-CN" if tr.language == "zh" else "en"
    return f"""<!DOCTYPE html>
<html lang="{html_lang}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>{escape(tr("page.title"))}</title>
<style>{_static("dashboard.css")}</style>
</head>
<body>
<main id="page" style="--level: {_COLOURS[level]}" data-level="{level.value}">
<header>
  <div class="logo" aria-hidden="true">K<i></i></div>
  <div class="grow"><h1>ki2api</h1><p class="status">{escape(tr("page.title"))} · {escape(__version__)}</p></div>
  <a class="switch" href="?lang={other}" hreflang="{other}">{escape(tr("page.language"))}</a>
</header>
<div class="grid" id="cards">
{cards(status, tr, now, base_url=base_url, root_url=root_url)}
</div>
{_DASHBOARD}
<section class="wide connect">
  <h2>{escape(tr("page.connect"))}</h2>
  <p>{escape(tr("page.openai_hint"))}</p>
  <pre>{escape(base_url)}</pre>
  <p>{escape(tr("page.anthropic_hint"))}</p>
  <pre>{escape(root_url)}</pre>
  <p class="small" id="key-line">{escape(_key_line(tr, public_key, config_file))}</p>
  <pre>curl {escape(base_url)}/models -H "Authorization: Bearer {escape(public_key or "$API_KEY")}"</pre>
  <p class="small">{escape(tr("page.web_hint"))}</p>
  <pre>KI2API_ALLOWED_ORIGINS=https://chat.example.com ki2api-tray</pre>
</section>
<footer>{escape(tr("page.refresh_note"))} <span id="updated"></span></footer>
</main>
<script type="application/json" id="ki2api-config">{_json_for_script(config)}</script>
<script>{_static("dashboard.js")}</script>
</body>
</html>
"""


def cards(status: Status, tr: Translator, now: datetime, *, base_url: str, root_url: str) -> str:
    """The cards at the top: server, login, requests, quota, and the last error while it lasts."""
    token = status.token
    last = (
        tr("page.ago", duration=_ago(now, status.last_request_at, tr)) if status.last_request_at else tr("page.never")
    )
    totals = tr("page.totals", total=f"{status.requests_total:,}", errors=f"{status.errors_total:,}", last=last)
    sections = [
        _section(
            tr("page.server"),
            status_line(status, tr).lstrip("●○ "),
            _small(root_url),
            ident="card-server",
        ),
        _section(
            tr("page.token"),
            token_line(token, tr, now),
            _token_lines(status, tr),
            css="error" if level_of(status) is Level.BAD else "",
            ident="card-login",
        ),
        # One translated sentence: Chinese punctuation (full-width colons) differs from English.
        _section(tr("page.requests"), requests_line(status, tr), _small(totals), ident="card-requests"),
        _section(
            tr("page.quota"),
            quota_line(status.quota, tr),
            _quota_bar(status) + '<p class="small" id="forecast"></p><p class="small" id="overage"></p>',
            ident="card-quota",
        ),
    ]
    if len(status.accounts) > 1:
        sections.append(_accounts_section(status, tr, now))
    if status.last_error:
        when = ""
        if status.last_error_at is not None:
            at = status.last_error_at.astimezone()
            moment = f"{at:%H:%M}" if at.date() == now.date() else f"{date_text(at, tr)} {at:%H:%M}"
            when = _small(tr("page.error_when", time=moment, ago=tr("page.ago", duration=_ago(now, at, tr))))
        sections.append(_section(tr("page.last_error"), status.last_error, when, css="wide error", ident="card-error"))
    notices = [escape(tr("notice.no_menu"))] if status.tray_menu_missing else []
    if status.update is not None:
        link = f'<a href="{escape(status.update.url)}">{escape(tr("page.update_link"))}</a>'
        notices.append(f"{escape(tr('page.update', version=status.update.version, current=__version__))} {link}")
    if notices:
        sections.append('<section class="wide">' + "".join(f"<p>{n}</p>" for n in notices) + "</section>\n")
    return "".join(sections)


_DASHBOARD = """
<section class="wide dashboard" id="dashboard" hidden>
  <h2 data-text="dashboard"></h2>
  <form id="key-form" hidden>
    <p class="small" data-text="key_needed"></p>
    <input id="key-input" type="password" autocomplete="off" data-placeholder="key_placeholder">
    <button type="submit" data-text="key_button"></button>
    <span class="bad" id="key-wrong" data-text="key_wrong" hidden></span>
  </form>
  <p class="small bad" id="offline" data-text="offline" hidden></p>
  <p class="small" id="recording-off" data-text="recording_off" hidden></p>
  <div class="stats" id="stats">
    <div><span data-text="stat_credits"></span><b id="stat-credits"></b></div>
    <div><span data-text="stat_requests"></span><b id="stat-requests"></b></div>
    <div><span data-text="stat_error_rate"></span><b id="stat-error-rate"></b></div>
    <div><span data-text="stat_ttfb"></span><b id="stat-ttfb"></b></div>
  </div>
  <div class="charts">
    <figure><figcaption data-text="credits_chart"></figcaption><div class="chart" id="chart-credits"></div></figure>
    <figure><figcaption data-text="requests_chart"></figcaption><div class="chart" id="chart-requests"></div></figure>
  </div>
  <ul class="legend" id="legend"></ul>
  <h2 data-text="recent"></h2>
  <div class="filters">
    <label><span data-text="filter_status"></span> <select id="filter-status"></select></label>
    <label><span data-text="filter_model"></span> <select id="filter-model"></select></label>
    <label><span data-text="filter_client"></span> <select id="filter-client"></select></label>
  </div>
  <div class="table-wrap"><table id="requests">
    <thead><tr><th data-text="col_time"></th><th data-text="col_client"></th><th data-text="col_model"></th>
      <th data-text="col_status"></th><th data-text="col_duration"></th><th data-text="col_tokens"></th>
      <th data-text="col_credits"></th></tr></thead>
    <tbody></tbody>
  </table></div>
  <div class="detail" id="detail" hidden></div>
</section>"""


def _token_lines(status: Status, tr: Translator) -> str:
    token = status.token
    if tr.language == "en":
        # Kiro-side details and notes are English sentences; the Chinese page shows its own hint instead.
        hints = [token.detail]
    else:
        renewing = token.health is TokenHealth.EXPIRED and token.renewable
        hints = [tr("page.token_hint.renewing" if renewing else f"page.token_hint.{token.health.value}")]
    lines = [
        login_line(token, tr),
        *hints,
        tr("page.source", source=token.source) if token.source else "",
        tr("page.profile", arn=token.profile_arn) if token.profile_arn else "",
        token.note if tr.language == "en" else "",
    ]
    html = "".join(_small(text) for text in lines if text)
    if token.support_url:
        # Kiro suspended the account: its support page is the one thing that helps (kiro-protocol-2026.md §7).
        html += f'<p class="small"><a href="{escape(token.support_url)}">{escape(tr("menu.open_support"))}</a></p>'
    return html


def _key_line(tr: Translator, public_key: str | None, config_file: str) -> str:
    if public_key:
        return tr("page.key_default", api_key=public_key)
    return tr("page.key_custom", config=config_file)


def _json_for_script(value: Any) -> str:
    # Inside <script>, "</script>" or "<!--" in a string would end or confuse the element; \u003c cannot.
    return json.dumps(value, ensure_ascii=False).replace("<", "\\u003c")


def _small(text: str) -> str:
    return f'<p class="small">{escape(text)}</p>'


def _section(title: str, headline: str, extra: str, css: str = "", ident: str = "") -> str:
    attrs = (f' id="{ident}"' if ident else "") + (f' class="{css}"' if css else "")
    return f'<section{attrs}><h2>{escape(title)}</h2><p class="big">{escape(headline)}</p>{extra}</section>\n'


def _accounts_section(status: Status, tr: Translator, now: datetime) -> str:
    """Every account of the pool: health, kind, quota, and why a suspended one is out (its support link)."""
    rows = []
    for account in status.accounts:
        token = account.token
        lines = [login_line(token, tr), token.detail if token.health is not TokenHealth.VALID else ""]
        if account.quota is not None:
            lines.append(quota_line(account.quota, tr))
        extra = "".join(f'<p class="small">{escape(text)}</p>' for text in lines if text)
        if token.support_url:
            extra += f'<p class="small"><a href="{escape(token.support_url)}">{escape(tr("menu.open_support"))}</a></p>'
        weight = ' style="font-weight: 600"' if account.in_use else ""
        rows.append(f"<li><span{weight}>{escape(account_line(account, tr, now))}</span>{extra}</li>")
    items = "".join(rows)
    return (
        f'<section class="wide"><h2>{escape(tr("page.accounts"))}</h2>'
        f'<ul style="margin: 0; padding-left: 18px">{items}</ul></section>\n'
    )


def _quota_bar(status: Status) -> str:
    quota = status.quota
    if quota is None or quota.limit <= 0:
        return ""
    percent = max(0.0, min(100.0, quota.remaining / quota.limit * 100))
    return f'<div class="bar"><span style="width: {percent:.0f}%"></span></div>'


def _ago(now: datetime, then: datetime, tr: Translator) -> str:
    return duration_text((now - then).total_seconds(), tr)
