"""Words the person sees in the tray menu, notifications and status page, in English and Simplified Chinese.

The language comes from `settings.language` ("auto" follows the OS locale). Both tables must carry the
same keys and the same `{fields}`; a test checks that.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass

log = logging.getLogger(__name__)

LANGUAGES = ("en", "zh")

EN: dict[str, str] = {
    # Status lines (the menu's first line and the tooltip).
    "status.running": "ki2api — running on {address}",
    "status.starting": "ki2api — starting…",
    "status.stopping": "ki2api — stopping…",
    "status.stopped": "ki2api — stopped",
    "status.port_in_use": "ki2api — port {port} in use",
    "status.error": "ki2api — error: {error}",
    "token.valid": "Token: valid, expires in {duration}",
    "token.valid_no_expiry": "Token: valid",
    "token.expiring": "Token: expires in {duration}",
    "token.expired": "Token: expired — log in to Kiro",
    "token.renewing": "Token: expired — renewing it",
    "token.missing": "Token: file not found",
    "token.unreadable": "Token: file unreadable",
    "token.refresh_failed": "Token: refresh failed — log in to Kiro",
    "token.suspended": "Kiro account suspended — contact Kiro support",
    "token.exhausted": "Kiro credits used up — back {date}",
    "token.cooldown": "Kiro paused this account for {duration}",
    "token.login": "Login: {login}",
    "requests.today": "Requests today: {count}",
    "requests.today_errors": "Requests today: {count} · errors: {errors}",
    "quota.left": "Quota: {remaining} of {limit} left",
    "quota.left_resets": "Quota: {remaining} of {limit} left · resets {date}",
    "quota.unknown": "Quota: unknown",
    "duration.under_minute": "less than a minute",
    "duration.minutes": "{minutes} min",
    "duration.hours": "{hours} h {minutes} min",
    "duration.days": "{days} days",
    "date.short": "{day} {month_name} {year}",
    "date.month_names": "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec",
    # Menu actions.
    "menu.start": "Start server",
    "menu.stop": "Stop server",
    "menu.copy_url": "Copy base URL ({url})",
    "menu.copy_key": "Copy API key",
    "menu.open_status": "Open status page",
    "menu.open_logs": "Open logs folder",
    "menu.open_config": "Open config",
    "menu.autostart": "Start at login",
    "menu.update": "Update available: ki2api {version}…",
    "menu.quit": "Quit ki2api",
    "menu.setup": "Set up a client",
    "menu.setup_preview": "{client}: show the changes",
    "menu.setup_apply": "{client}: apply the changes",
    "menu.setup_undo": "{client}: undo",
    "menu.setup_copy": "Copy settings for",
    "menu.open_support": "Open Kiro support",
    "menu.about": "About ki2api {version}",
    "menu.open_kiro": "Open Kiro to sign in",
    "menu.notifications": "Notifications",
    # Notifications: only for things the person has to act on.
    "notify.title": "ki2api",
    "notify.token_expired": "Your Kiro login has expired. Open Kiro and sign in again.",
    "notify.refresh_failed": "Kiro refused to renew the login. Open Kiro and sign in again.",
    "notify.suspended": "Kiro suspended your account; ki2api stopped using it. Kiro said: {message}",
    "notify.port_in_use": "Port {port} is already in use. Quit the other program or change the port in config.json.",
    "notify.crashed": "The server stopped unexpectedly: {error}. Choose “Start server” to try again.",
    "notify.start_failed": "The server could not start: {error}",
    "notify.no_token_title": "Kiro login not found",
    "notify.no_token": "Looked for {path}. Open Kiro and sign in; ki2api picks the login up by itself.",
    "notify.already_running": "ki2api is already running — find it in the tray.",
    "notify.copy_failed": "Could not copy to the clipboard: {reason}",
    "notify.setup_applied": "{client} now uses ki2api ({path}); the old file is kept as {backup}.",
    "notify.setup_created": "{client} now uses ki2api: created {path}.",
    "notify.setup_undone": "{client}: {path} is back as it was.",
    "notify.setup_failed": "Could not set up {client}: {reason}",
    "notify.open_failed": "Could not open {target}: {reason}",
    "notify.autostart_failed": "Could not change “Start at login”: {reason}",
    "notify.move_to_applications": "macOS runs ki2api from a temporary copy. Move ki2api-tray.app to the "
    "Applications folder and open it from there; “Start at login” works only from there.",
    "notify.about": "ki2api {version} (Python {python}). Settings and logs: {folder}",
    "notify.kiro_not_found": "Kiro is not installed here, so its download page opens instead.",
    "notify.credits_used": "{percent}% of your Kiro credits are used ({used} of {limit}).",
    "notify.login_expiring": "Your Kiro login expires in {duration} and ki2api cannot renew it. Open Kiro and sign in.",
    "notify.out_of_credits": "Your Kiro credits are used up: {message}",
    # Status page.
    "page.title": "ki2api status",
    "page.server": "Server",
    "page.token": "Kiro login",
    "page.requests": "Requests",
    "page.quota": "Quota",
    "page.accounts": "Kiro accounts (first usable one answers)",
    "account.line": "{name}: {health}",
    "account.in_use": "{name} (in use): {health}",
    "notify.account_suspended": "Kiro suspended the account “{name}”; ki2api no longer uses it. Kiro said: {message}",
    "page.connect": "Connect a client",
    "page.today": "Today",
    "page.totals": "Total: {total} · errors: {errors} · last request: {last}",
    "page.never": "never",
    "page.ago": "{duration} ago",
    "page.last_error": "Last error",
    "page.source": "Read from {source}",
    "page.profile": "Profile: {arn}",
    "page.openai_hint": "OpenAI-compatible clients: set the base URL to",
    "page.anthropic_hint": "Anthropic-compatible clients (Claude Code): set ANTHROPIC_BASE_URL to",
    "page.key_hint": "API key: the api_key value in {config}, or the API_KEY environment variable. "
    "The tray menu's “Copy API key” copies it.",
    "page.refresh_note": "This page updates itself every 5 seconds.",
    "page.error_when": "{time} ({ago})",
    "page.key_default": "API key: {api_key} (the public default; set your own with API_KEY before listening "
    "beyond this machine)",
    "page.key_custom": "API key: a custom key is set, so it is not shown. It is the api_key value in {config} or the "
    "API_KEY environment variable; the tray menu's “Copy API key” copies it.",
    "page.token_hint.missing": "Open Kiro and sign in; ki2api picks the login up by itself.",
    "page.token_hint.unreadable": "The login file cannot be read. Open Kiro and sign in again.",
    "page.token_hint.expired": "Open Kiro and sign in again.",
    "page.token_hint.renewing": "ki2api renews it with the refresh token on the next request.",
    "page.token_hint.refresh_failed": "Kiro did not renew the login. Open Kiro and sign in again.",
    "page.token_hint.expiring": "ki2api renews it on the next request.",
    "page.token_hint.valid": "",
    "page.token_hint.suspended": "Kiro locked this account. Only Kiro support can unlock it.",
    "page.token_hint.exhausted": "The credits are used up until the plan resets.",
    "page.token_hint.cooldown": "Kiro is limiting this account for a while; ki2api rests it meanwhile.",
    "page.language": "中文",
    "page.update": "ki2api {version} is available (you run {current}):",
    "page.update_link": "release page",
    "notice.no_menu": "The tray icon has no menu: pystray needs PyGObject for one. Install Debian's python3-gi, "
    "gir1.2-gtk-3.0 and gir1.2-ayatanaappindicator3-0.1, then run ki2api from a venv made with "
    "`python3 -m venv --system-site-packages` (see the README).",
    "page.web_hint": "Browser-based clients: web pages may call ki2api only from origins you allow. Start "
    "ki2api with KI2API_ALLOWED_ORIGINS set to the page's origin (comma-separated, * wildcards), e.g.",
}

ZH: dict[str, str] = {
    "status.running": "ki2api — 运行中：{address}",
    "status.starting": "ki2api — 正在启动…",
    "status.stopping": "ki2api — 正在停止…",
    "status.stopped": "ki2api — 已停止",
    "status.port_in_use": "ki2api — 端口 {port} 已被占用",
    "status.error": "ki2api — 错误：{error}",
    "token.valid": "令牌：有效，{duration}后过期",
    "token.valid_no_expiry": "令牌：有效",
    "token.expiring": "令牌：{duration}后过期",
    "token.expired": "令牌：已过期 — 请重新登录 Kiro",
    "token.renewing": "令牌：已过期 — 正在刷新",
    "token.missing": "令牌：未找到文件",
    "token.unreadable": "令牌：文件无法读取",
    "token.refresh_failed": "令牌：刷新失败 — 请重新登录 Kiro",
    "token.suspended": "Kiro 账号已被暂停 — 请联系 Kiro 支持",
    "token.exhausted": "Kiro 额度已用完 — {date}恢复",
    "token.cooldown": "Kiro 暂停了此账号 {duration}",
    "token.login": "登录方式：{login}",
    "requests.today": "今日请求：{count}",
    "requests.today_errors": "今日请求：{count} · 错误：{errors}",
    "quota.left": "额度：剩余 {remaining} / {limit}",
    "quota.left_resets": "额度：剩余 {remaining} / {limit} · {date}重置",
    "quota.unknown": "额度：未知",
    "duration.under_minute": "不到一分钟",
    "duration.minutes": "{minutes} 分钟",
    "duration.hours": "{hours} 小时 {minutes} 分钟",
    "duration.days": "{days} 天",
    "date.short": "{year}年{month_name}{day}日",
    "date.month_names": "1月 2月 3月 4月 5月 6月 7月 8月 9月 10月 11月 12月",
    "menu.start": "启动服务",
    "menu.stop": "停止服务",
    "menu.copy_url": "复制接口地址（{url}）",
    "menu.copy_key": "复制 API 密钥",
    "menu.open_status": "打开状态页",
    "menu.open_logs": "打开日志文件夹",
    "menu.open_config": "打开配置文件",
    "menu.autostart": "登录时自动启动",
    "menu.update": "有新版本：ki2api {version}…",
    "menu.quit": "退出 ki2api",
    "menu.setup": "配置客户端",
    "menu.setup_preview": "{client}：查看改动",
    "menu.setup_apply": "{client}：应用改动",
    "menu.setup_undo": "{client}：撤销",
    "menu.setup_copy": "复制配置",
    "menu.open_support": "打开 Kiro 支持页面",
    "menu.about": "关于 ki2api {version}",
    "menu.open_kiro": "打开 Kiro 登录",
    "menu.notifications": "通知",
    "notify.title": "ki2api",
    "notify.token_expired": "Kiro 登录已过期。请打开 Kiro 重新登录。",
    "notify.refresh_failed": "Kiro 拒绝了续期请求。请打开 Kiro 重新登录。",
    "notify.suspended": "Kiro 暂停了你的账号，ki2api 已停止使用它。Kiro 的原话：{message}",
    "notify.port_in_use": "端口 {port} 已被占用。请退出占用它的程序，或在 config.json 中更换端口。",
    "notify.crashed": "服务意外停止：{error}。可点击“启动服务”重试。",
    "notify.start_failed": "服务无法启动：{error}",
    "notify.no_token_title": "未找到 Kiro 登录",
    "notify.no_token": "查找位置：{path}。请打开 Kiro 并登录，ki2api 会自动读取登录信息。",
    "notify.already_running": "ki2api 已在运行 — 请在系统托盘中找到它。",
    "notify.copy_failed": "无法复制到剪贴板：{reason}",
    "notify.setup_applied": "{client} 已改用 ki2api（{path}）；原文件已备份为 {backup}。",
    "notify.setup_created": "{client} 已改用 ki2api：已创建 {path}。",
    "notify.setup_undone": "{client}：{path} 已恢复原样。",
    "notify.setup_failed": "无法配置 {client}：{reason}",
    "notify.open_failed": "无法打开 {target}：{reason}",
    "notify.autostart_failed": "无法更改“登录时自动启动”：{reason}",
    "notify.move_to_applications": "macOS 正在从临时副本运行 ki2api。请把 ki2api-tray.app 移到“应用程序”文件夹，"
    "再从那里打开；“登录时自动启动”只在那里有效。",
    "notify.about": "ki2api {version}（Python {python}）。设置和日志位于：{folder}",
    "notify.kiro_not_found": "本机没有安装 Kiro，将打开它的下载页面。",
    "notify.credits_used": "Kiro 积分已用 {percent}%（{used} / {limit}）。",
    "notify.login_expiring": "Kiro 登录将在 {duration}后过期，且 ki2api 无法续期。请打开 Kiro 登录。",
    "notify.out_of_credits": "Kiro 积分已用完：{message}",
    "page.title": "ki2api 状态",
    "page.server": "服务",
    "page.token": "Kiro 登录",
    "page.requests": "请求",
    "page.quota": "额度",
    "page.accounts": "Kiro 账号（由第一个可用账号应答）",
    "account.line": "{name}：{health}",
    "account.in_use": "{name}（使用中）：{health}",
    "notify.account_suspended": "Kiro 暂停了账号“{name}”，ki2api 已不再使用它。Kiro 的原话：{message}",
    "page.connect": "连接客户端",
    "page.today": "今日",
    "page.totals": "累计：{total} · 错误：{errors} · 最近请求：{last}",
    "page.never": "暂无",
    "page.ago": "{duration}前",
    "page.last_error": "最近错误",
    "page.source": "读取自 {source}",
    "page.profile": "配置文件：{arn}",
    "page.openai_hint": "OpenAI 兼容客户端：将接口地址（base URL）设为",
    "page.anthropic_hint": "Anthropic 兼容客户端（Claude Code）：将 ANTHROPIC_BASE_URL 设为",
    "page.key_hint": "API 密钥：{config} 中的 api_key，或环境变量 API_KEY。托盘菜单的“复制 API 密钥”可复制它。",
    "page.refresh_note": "本页每 5 秒自动更新。",
    "page.error_when": "{time}（{ago}）",
    "page.key_default": "API 密钥：{api_key}（公开的默认密钥；如要让本机以外访问，请先用 API_KEY 设置自己的密钥）",
    "page.key_custom": "API 密钥：已设置自定义密钥，因此不在此显示。它是 {config} 中的 api_key 或环境变量 API_KEY；"
    "托盘菜单的“复制 API 密钥”可复制它。",
    "page.token_hint.missing": "请打开 Kiro 并登录，ki2api 会自动读取登录信息。",
    "page.token_hint.unreadable": "登录文件无法读取。请打开 Kiro 重新登录。",
    "page.token_hint.expired": "请打开 Kiro 重新登录。",
    "page.token_hint.renewing": "ki2api 会在下一次请求时用刷新令牌续期。",
    "page.token_hint.refresh_failed": "Kiro 没有续期登录。请打开 Kiro 重新登录。",
    "page.token_hint.expiring": "ki2api 会在下一次请求时续期。",
    "page.token_hint.valid": "",
    "page.token_hint.suspended": "Kiro 锁定了此账号，只有 Kiro 支持团队可以解锁。",
    "page.token_hint.exhausted": "积分已用完，套餐重置后恢复。",
    "page.token_hint.cooldown": "Kiro 暂时限制了此账号的请求频率，ki2api 会让它休息一会儿。",
    "page.language": "English",
    "page.update": "ki2api {version} 已发布（当前版本 {current}）：",
    "page.update_link": "发布页面",
    "notice.no_menu": "托盘图标没有菜单：pystray 需要 PyGObject 才能显示菜单。请安装 Debian 的 python3-gi、"
    "gir1.2-gtk-3.0 和 gir1.2-ayatanaappindicator3-0.1，再在用 `python3 -m venv --system-site-packages` "
    "创建的 venv 中运行 ki2api（见 README）。",
    "page.web_hint": "网页客户端：只有你允许的来源（origin）才能从浏览器调用 ki2api。启动前把 KI2API_ALLOWED_ORIGINS "
    "设为该网页的来源（逗号分隔，可用 * 通配），例如：",
}

TABLES: dict[str, dict[str, str]] = {"en": EN, "zh": ZH}


@dataclass(frozen=True)
class Translator:
    """Looks up a string for one language and fills in its fields."""

    language: str = "en"

    def __call__(self, key: str, **fields: object) -> str:
        template = TABLES.get(self.language, EN).get(key) or EN[key]
        return template.format(**fields)

    def template(self, key: str) -> str:
        """The unfilled string, for a page script that fills in the fields itself."""
        return TABLES.get(self.language, EN).get(key) or EN[key]

    def month_name(self, month: int) -> str:
        return self("date.month_names").split()[month - 1]


def choose_language(setting: str = "auto", environ: Mapping[str, str] = os.environ) -> str:
    """ "en" or "zh": an explicit setting wins, "auto" follows the OS locale."""
    if setting.strip().lower() in ("", "auto"):
        return system_language(environ)
    return _normalise(setting) or "en"


def language_from_accept(header: str) -> str | None:
    """The best of our languages for an HTTP `Accept-Language` header ("zh-CN,zh;q=0.9,en;q=0.8"), or None."""
    ranked: list[tuple[float, int, str]] = []
    for index, item in enumerate(header.split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        language = _normalise(tag) if tag.strip() not in ("", "*") else None
        if language is not None and quality > 0:
            ranked.append((-quality, index, language))
    return min(ranked)[2] if ranked else None


def system_language(environ: Mapping[str, str] = os.environ, platform: str = sys.platform) -> str:
    for candidate in _os_locales(environ, platform):
        language = _normalise(candidate)
        if language:
            return language
    return "en"


def _normalise(code: str) -> str | None:
    """Map a locale name ("zh_CN.UTF-8", "zh-Hans", "en_US", "C") to one of our languages, or None."""
    code = code.strip().lower().replace("-", "_")
    if not code or code in ("c", "posix", "auto"):
        return None
    if code.startswith("zh"):
        return "zh"
    return "en"


def _os_locales(environ: Mapping[str, str], platform: str) -> list[str]:
    """Locale names in the order the OS would use them for messages."""
    found: list[str] = []
    # gettext order: LANGUAGE (a colon list) beats LC_ALL, LC_MESSAGES and LANG.
    found.extend(part for part in environ.get("LANGUAGE", "").split(":") if part)
    found.extend(environ[var] for var in ("LC_ALL", "LC_MESSAGES", "LANG") if environ.get(var))
    if platform == "win32":
        found[:0] = _windows_ui_locale()
    elif platform == "darwin":
        # Apps started from Finder get no LANG; the user's language list lives in NSLocale.
        found.extend(_macos_preferred_languages())
    return found


def _windows_ui_locale() -> list[str]:
    try:
        import ctypes
        import locale

        lang_id = ctypes.windll.kernel32.GetUserDefaultUILanguage()  # type: ignore[attr-defined]
        name = locale.windows_locale.get(int(lang_id))
        return [name] if name else []
    except (AttributeError, OSError, ValueError):
        return []


def _macos_preferred_languages() -> list[str]:
    try:
        from Foundation import NSLocale  # type: ignore[import-not-found]  # pyobjc, present with pystray on macOS

        return [str(code) for code in NSLocale.preferredLanguages()]
    except Exception:  # noqa: BLE001 - any pyobjc failure just means "no preference known"
        log.debug("could not read the macOS language list", exc_info=True)
        return []
