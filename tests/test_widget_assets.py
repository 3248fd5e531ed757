"""How the widget's files travel: compressed to browsers that accept it, and a favicon."""

from __future__ import annotations

import gzip
import re

import pytest


@pytest.fixture()
def client(tmp_path):
    from bot.settings import Settings
    from web import create_app

    return create_app(Settings(var_dir=tmp_path)).test_client()


def test_widget_script_is_compressed_for_a_browser_that_accepts_it(client):
    plain = client.get("/widget.js")
    assert plain.status_code == 200 and "Content-Encoding" not in plain.headers
    packed = client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
    assert packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.data) == plain.data and len(packed.data) < len(plain.data) / 2


def test_the_demo_page_has_a_favicon(client):
    assert 'rel="icon"' in client.get("/").get_data(as_text=True)
    for path in ("/favicon.ico", "/favicon.svg"):
        resp = client.get(path)
        assert resp.status_code == 200 and resp.mimetype == "image/svg+xml"


def test_the_stylesheet_url_carries_its_version_and_is_cached_long(client):
    script = client.get("/widget.js")
    assert script.cache_control.max_age == 300  # city pages load it by a fixed URL
    version = re.search(r"/widget\.css\?v=([0-9a-f]{12})", script.get_data(as_text=True)).group(1)
    css = client.get(f"/widget.css?v={version}")
    assert css.cache_control.max_age == 365 * 24 * 3600 and css.cache_control.immutable
    assert client.get("/widget.css?v=old").cache_control.max_age == 300  # an old URL is not pinned
    again = client.get(f"/widget.css?v={version}", headers={"If-None-Match": css.headers["ETag"]})
    assert again.status_code == 304
