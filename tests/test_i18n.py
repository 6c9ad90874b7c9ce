from __future__ import annotations

import string

import pytest

from ki2api_tray.i18n import EN, ZH, Translator, choose_language, system_language


def _fields(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def test_i18n_tables_have_the_same_keys() -> None:
    assert set(EN) == set(ZH)


@pytest.mark.parametrize("key", sorted(EN))
def test_i18n_tables_have_the_same_fields(key: str) -> None:
    assert _fields(EN[key]) == _fields(ZH[key]), key


def test_i18n_month_names_have_twelve_entries_in_both_languages() -> None:
    assert len(Translator("en")("date.month_names").split()) == 12
    assert len(Translator("zh")("date.month_names").split()) == 12


@pytest.mark.parametrize(
    ("setting", "environ", "expected"),
    [
        ("en", {"LANG": "zh_CN.UTF-8"}, "en"),
        ("zh", {"LANG": "en_US.UTF-8"}, "zh"),
        ("zh-CN", {}, "zh"),
        ("auto", {"LANG": "zh_CN.UTF-8"}, "zh"),
        ("auto", {"LANG": "en_GB.UTF-8"}, "en"),
        ("auto", {"LANGUAGE": "zh_TW:en", "LANG": "en_US.UTF-8"}, "zh"),
        ("auto", {"LC_ALL": "zh_SG.UTF-8", "LANG": "en_US.UTF-8"}, "zh"),
        ("auto", {"LANG": "C"}, "en"),
        ("auto", {}, "en"),
        ("", {"LANG": "zh_CN"}, "zh"),
    ],
)
def test_choose_language_follows_setting_then_locale(setting: str, environ: dict[str, str], expected: str) -> None:
    assert choose_language(setting, environ) == expected


def test_system_language_unknown_locale_falls_back_to_english() -> None:
    assert system_language({"LANG": "de_DE.UTF-8"}, platform="linux") == "en"


def test_translator_fills_fields() -> None:
    assert Translator("en")("status.running", address="127.0.0.1:8989") == "ki2api — running on 127.0.0.1:8989"
    assert Translator("zh")("menu.quit") == "退出 ki2api"


def test_status_page_auto_language_follows_the_locale(monkeypatch: pytest.MonkeyPatch) -> None:
    from ki2api_tray.api.status_page import render_status_page
    from ki2api_tray.state import Status

    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    monkeypatch.delenv("LANGUAGE", raising=False)
    monkeypatch.delenv("LC_ALL", raising=False)
    monkeypatch.delenv("LC_MESSAGES", raising=False)
    page = render_status_page(Status(), base_url="http://127.0.0.1:8989/v1", language="auto")
    assert '<html lang="zh-CN">' in page and "已停止" in page
