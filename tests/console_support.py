"""Staff console test support: logging a Flask test client in, the CSRF token of a page, and the
ids and labelled fields of a page (shared by the console, editors' and notices' tests)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

PASSWORD = "correct-horse-battery"


def csrf_token(page: str) -> str:
    return re.search(r'name="csrf_token"(?: type="hidden")? value="([^"]+)"', page).group(1)


def logged_in(app, name: str, password: str = PASSWORD):
    """A test client of `app` logged in as `name`, with `.token` the CSRF token for its posts."""
    client = app.test_client()
    page = client.get("/staff/login").get_data(as_text=True)
    data = {"csrf_token": csrf_token(page), "name": name, "password": password}
    assert client.post("/staff/login", data=data).status_code == 302
    client.token = csrf_token(client.get("/staff/tickets").get_data(as_text=True))
    return client


class FormsAndIds(HTMLParser):
    """Every id on a page, and every field a person fills in with whether a label names it."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: list[str] = []
        self.label_for: set[str] = set()
        self.fields: list[tuple[str, str | None, bool]] = []  # (tag, id, inside a <label>)
        self._in_label = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if a.get("id"):
            self.ids.append(a["id"])
        if tag == "label":
            self._in_label += 1
            if a.get("for"):
                self.label_for.add(a["for"])
        elif tag in ("textarea", "select") or (tag == "input" and a.get("type") not in ("hidden", "submit")):
            self.fields.append((tag, a.get("id"), self._in_label > 0))

    def handle_endtag(self, tag: str) -> None:
        if tag == "label":
            self._in_label = max(0, self._in_label - 1)
