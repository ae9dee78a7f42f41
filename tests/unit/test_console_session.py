"""The console's session cookie: made and read with a clock, against a real credential store
(``IamService`` on a SQLite database); two stores on one key file accept each other's."""

from __future__ import annotations

from pathlib import Path

import pytest

from opensage.console.session import LoginFailed, Sessions, safe_next
from opensage.services.iam import IamService
from opensage.settings import Settings
from opensage.store.db import Database

ACCOUNT = "123456789012"
ROOT = ("AKIAUNITTESTROOT0000", "unit-test-root-secret")


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def _iam(data_dir: Path, clock: Clock) -> IamService:
    settings = Settings(data_dir=data_dir, port=0, account_id=ACCOUNT)
    db = Database(settings.database_url)
    db.prepare()
    service = IamService(settings, db, clock=clock)
    service.ensure_root(*ROOT)
    return service


def test_a_cookie_lives_its_lifetime_and_no_longer(tmp_path: Path) -> None:
    clock = Clock()
    sessions = Sessions(_iam(tmp_path, clock), 3600, clock)
    made = sessions.login(ROOT[0], ROOT[1], None)
    assert made.max_age == 3600 and made.principal.type == "Root"
    clock.now += 3599
    assert sessions.principal(made.cookie) == made.principal
    clock.now += 1
    assert sessions.key_of(made.cookie) is None and sessions.principal(made.cookie) is None


def test_another_store_on_the_same_key_file_accepts_the_cookie(tmp_path: Path) -> None:
    clock = Clock()
    first = Sessions(_iam(tmp_path, clock), 3600, clock)
    second = Sessions(_iam(tmp_path, clock), 3600, clock)
    made = first.login(*ROOT, None)
    assert second.key_of(made.cookie) == ROOT[0]
    other = Sessions(_iam(tmp_path / "elsewhere", clock), 3600, clock)
    assert other.key_of(made.cookie) is None  # another key file: another MAC key


@pytest.mark.parametrize("secret", ["", "unit-test-root-secreT", ROOT[1] + " "])
def test_a_wrong_secret_or_unknown_key_is_refused_alike(tmp_path: Path, secret: str) -> None:
    clock = Clock()
    sessions = Sessions(_iam(tmp_path, clock), 3600, clock)
    with pytest.raises(LoginFailed) as wrong:
        sessions.login(ROOT[0], secret, None)
    with pytest.raises(LoginFailed) as unknown:
        sessions.login("AKIANOSUCHKEY0000000", ROOT[1], None)
    assert wrong.value.message == unknown.value.message
    assert wrong.value.principal is not None and unknown.value.principal is None


def test_after_login_only_console_pages_are_followed() -> None:
    assert safe_next("/_console/training-jobs?x=1", "/_console") == "/_console/training-jobs?x=1"
    for bad in ("https://elsewhere.example/", "//elsewhere/", "/_console//elsewhere",
                "/_console/\\elsewhere", "/other", "/_console/login", ""):
        assert safe_next(bad, "/_console") == "/_console/", bad
