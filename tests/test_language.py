"""The page's language: chosen from the device's cookie, else Accept-Language; every page says its
`lang` and `dir`, loads its locale's catalog script with SRI, and refusals carry the same stable
code with a sentence in that language."""
from __future__ import annotations

import base64
import hashlib
import json
import re
import shutil
import subprocess

import pytest
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from chat.catalogs import LOCALES, bcp47, read_catalog
from chat.jscatalog import asset_name

PAGES = ("/", "/create", "/login", "/chat/lobby", "/kiosk/lobby")


async def fetch(url: str, **headers: str) -> str:
    return (await AsyncHTTPClient().fetch(url, headers=headers)).body.decode("utf-8")


def html_tag(page: str) -> dict:
    tag = re.search(r"<html[^>]*>", page).group(0)
    return dict(re.findall(r'([a-z]+)="([^"]*)"', tag))


@pytest.mark.gen_test
async def test_accept_language_picks_the_page_language(http_server, base_url) -> None:
    for header, lang, direction in (("pl-PL,pl;q=0.9,en;q=0.5", "pl", "ltr"), ("ar", "ar", "rtl"),
                                    ("pt-BR", "pt-BR", "ltr"), ("uk-UA", "uk", "ltr"),
                                    ("sv-SE, de;q=0.8", "de", "ltr"), ("ja", "en", "ltr")):
        for path in PAGES:
            page = await fetch(base_url + path, **{"Accept-Language": header})
            assert html_tag(page) == {"lang": lang, "dir": direction}, f"{path} with Accept-Language {header}"


@pytest.mark.gen_test
async def test_the_devices_choice_wins_over_accept_language(http_server, base_url) -> None:
    page = await fetch(base_url + "/login", **{"Accept-Language": "pl", "Cookie": "sealchat_lang=ar"})
    assert html_tag(page) == {"lang": "ar", "dir": "rtl"}
    assert re.search(r'<option value="ar" lang="ar" selected>', page), "the switcher shows the choice"
    page = await fetch(base_url + "/login", **{"Accept-Language": "pl", "Cookie": "sealchat_lang=xx-bogus"})
    assert html_tag(page)["lang"] == "pl", "an unknown choice falls back to Accept-Language"
    page = await fetch(base_url + "/login?lang=uk&roomname=a",
                       **{"Accept-Language": "pl", "Cookie": "sealchat_lang=ar"})
    assert html_tag(page) == {"lang": "uk", "dir": "ltr"}, "a link's ?lang= wins (sealchat verify uses it)"


@pytest.mark.gen_test
async def test_every_page_offers_every_language_in_its_own_name(http_server, base_url) -> None:
    for path in PAGES:
        page = await fetch(base_url + path)
        switchers = re.findall(r'<select class="language-switcher".*?</select>', page, re.S)
        assert switchers, f"{path} has a language switcher"
        for switcher in switchers:
            options = re.findall(r'<option value="([^"]+)" lang="[^"]+"(?: selected)?>([^<]+)</option>', switcher)
            assert [tag for tag, _ in options] == [bcp47(c) for c in LOCALES], path
            assert dict(options)["pl"] == "polski" and dict(options)["ar"] == "العربية"


@pytest.mark.gen_test
async def test_the_pages_load_their_languages_catalog_with_integrity(http_server, base_url, app) -> None:
    assets = app.settings["assets"]
    for code in LOCALES:
        page = await fetch(base_url + "/chat/lobby", Cookie=f"sealchat_lang={bcp47(code)}")
        scripts = re.findall(r'<script src="([^"]+)" integrity="([^"]+)"></script>', page)
        first_src, first_sri = scripts[0]
        assert first_src == assets.url(asset_name(code)), "the catalog comes before every other script"
        body = (await AsyncHTTPClient().fetch(base_url + first_src)).body
        assert first_sri == "sha384-" + base64.b64encode(hashlib.sha384(body).digest()).decode()


@pytest.mark.gen_test
async def test_a_refusal_keeps_its_code_and_speaks_the_language(http_server, base_url) -> None:
    german = read_catalog("de", "sealchat").get("Nothing here.").string
    assert german and german != "Nothing here."
    for headers, sentence in (({"Accept-Language": "de"}, german), ({}, "Nothing here.")):
        with pytest.raises(HTTPClientError) as refused:
            await AsyncHTTPClient().fetch(base_url + "/static/00000000000000000000/nothing.js", headers=headers)
        body = json.loads(refused.value.response.body)
        assert (body["code"], body["message"]) == ("not_found", sentence)


@pytest.mark.skipif(shutil.which("node") is None, reason="needs node")
def test_the_served_catalog_script_gives_the_locales_plural_forms(app, tmp_path) -> None:
    """The generated script (messages as JSON, CLDR's plural rule as code) run as a browser would."""
    assets = app.settings["assets"]
    script = tmp_path / "run.js"
    script.write_text(
        "const vm = require('node:vm'); const fs = require('node:fs'); const ctx = vm.createContext({});\n"
        f"vm.runInContext({json.dumps(assets[asset_name('pl')].body.decode())}, ctx);\n"
        f"vm.runInContext(fs.readFileSync({json.dumps(str(_static('js/i18n.js')))}, 'utf8'), ctx);\n"
        "const i = ctx.Seal.i18n;\n"
        "console.log(JSON.stringify({lang: i.lang(), rtl: i.rtl(),"
        " forms: [1, 2, 5, 22].map((n) => ctx.SealCatalog.plural(n)), size: i.size(1.5 * 1048576)}));\n")
    out = json.loads(subprocess.run(["node", str(script)], capture_output=True, text=True, check=True).stdout)
    assert out == {"lang": "pl", "rtl": False, "forms": [0, 1, 2, 1], "size": "1,5 MB"}


def _static(name: str):
    from chat.assets import STATIC_DIR
    return STATIC_DIR / name
