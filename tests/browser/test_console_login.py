"""The console under ``--auth sigv4`` in Chromium: an IAM user with AmazonSageMakerReadOnly
signs in through the form, lists and opens a running job, is refused its Stop with AWS's
words, and signs out; a wrong secret is answered on the form."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from playwright.sync_api import Page, expect

from opensage.server import RunningServer, start_in_thread
from opensage.settings import Settings
from opensage.testing import ROOT_KEYS, frameworks_dir_for_tests, wheelhouse_for_tests
from tests.browser.test_console import AXE, WAITING_SCRIPT
from tests.conftest import ACCOUNT, REGION
from tests.integration.script_jobs import FIRST_BUILD_TIMEOUT, script_request, upload_code
from tests.integration.test_training_jobs import BUCKET, wait_for

CONSOLE = "/_console"
READ_ONLY = "arn:aws:iam::aws:policy/AmazonSageMakerReadOnly"


@pytest.fixture(scope="module")
def signed_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    settings = Settings(data_dir=tmp_path_factory.mktemp("console-sigv4"), port=0,
                        account_id=ACCOUNT, region=REGION, auth="sigv4",
                        root_access_key_id=ROOT_KEYS[0], root_secret_access_key=ROOT_KEYS[1],
                        frameworks_dir=frameworks_dir_for_tests(),
                        wheelhouse=wheelhouse_for_tests(), container_engine="none")
    running = start_in_thread(settings)
    yield running
    running.stop()


@pytest.fixture(scope="module")
def reader(signed_server: RunningServer, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[dict[str, Any]]:
    """A read-only user's key pair, and a running job (waiting on a marker file) made by
    root."""
    def root(service: str) -> Any:
        return boto3.client(service, endpoint_url=signed_server.url, region_name=REGION,
                            aws_access_key_id=ROOT_KEYS[0], aws_secret_access_key=ROOT_KEYS[1],
                            config=Config(retries={"max_attempts": 1}))
    iam, sm, s3 = root("iam"), root("sagemaker"), root("s3")
    iam.create_user(UserName="reader")
    iam.attach_user_policy(UserName="reader", PolicyArn=READ_ONLY)
    key = iam.create_access_key(UserName="reader")["AccessKey"]
    s3.create_bucket(Bucket=BUCKET)
    marker = tmp_path_factory.mktemp("marker") / "never"
    submit = upload_code(s3, "waits", {"train.py": WAITING_SCRIPT})
    sm.create_training_job(**script_request("waits", submit,
                                            hyperparameters={"marker": str(marker)}))
    yield {"key": (key["AccessKeyId"], key["SecretAccessKey"]), "url": signed_server.url,
           "sm": sm}
    sm.stop_training_job(TrainingJobName="waits")  # root may (the script never ends)
    assert wait_for(sm, "waits", timeout=120)["TrainingJobStatus"] == "Stopped"


def sign_in(page: Page, url: str, key_id: str, secret: str) -> None:
    page.get_by_label("Access key ID").fill(key_id)
    page.get_by_label("Secret access key").fill(secret)
    page.get_by_role("button", name="Sign in").click()


def test_a_read_only_user_signs_in_reads_and_is_refused_a_stop(page: Page,
                                                               reader: dict[str, Any]) -> None:
    failures: list[str] = []
    page.on("pageerror", lambda exc: failures.append(str(exc)))
    key_id, secret = reader["key"]
    page.goto(reader["url"] + CONSOLE + "/training-jobs")
    expect(page).to_have_url(re.compile(r"/_console/login\?next="))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    sign_in(page, reader["url"], key_id, secret)
    expect(page).to_have_url(re.compile(r"/_console/training-jobs$"))  # where it was going
    expect(page.get_by_role("banner")).to_contain_text("Signed in as reader")
    page.locator("table.rows tbody tr").get_by_role("link", name="waits").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("waits")
    expect(page.locator(".head .status")).to_have_text("InProgress",
                                                       timeout=FIRST_BUILD_TIMEOUT * 1000)
    # the log tail is a logs: call the policy does not give: its refusal is shown instead
    expect(page.locator("[data-logs]")).to_contain_text(
        "is not authorized to perform: logs:DescribeLogStreams")
    confirms: list[str] = []

    def answer(dialog: Any) -> None:
        if dialog.type == "confirm":
            confirms.append(dialog.message)
        dialog.accept()
    page.on("dialog", answer)
    with page.expect_event("dialog", predicate=lambda d: d.type == "alert") as refused:
        page.get_by_role("button", name="Stop training job").click()
    assert confirms == ["Stop training job?"]
    assert refused.value.message == (
        f"User: arn:aws:iam::{ACCOUNT}:user/reader is not authorized to perform: "
        f"sagemaker:StopTrainingJob on resource: arn:aws:sagemaker:{REGION}:{ACCOUNT}:"
        "training-job/waits because no identity-based policy allows the "
        "sagemaker:StopTrainingJob action")
    assert reader["sm"].describe_training_job(
        TrainingJobName="waits")["TrainingJobStatus"] == "InProgress"
    # the object browser needs s3:ListAllMyBuckets, which the policy does not give
    page.get_by_role("navigation", name="Resources").get_by_role("link", name="Objects").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("AccessDeniedException")
    expect(page.locator("main")).to_contain_text("not authorized to perform: "
                                                 "s3:ListAllMyBuckets")
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/_console/login$"))
    page.goto(reader["url"] + CONSOLE + "/training-jobs")  # the session is gone
    expect(page).to_have_url(re.compile(r"/_console/login\?next="))
    assert failures == []


def test_a_wrong_secret_is_answered_on_the_form(page: Page, reader: dict[str, Any]) -> None:
    key_id, secret = reader["key"]
    page.goto(reader["url"] + CONSOLE + "/login")
    sign_in(page, reader["url"], key_id, secret[::-1])
    expect(page.get_by_role("alert")).to_have_text(
        "Your authentication information is incorrect. Please try again.")
    expect(page.get_by_label("Access key ID")).to_have_value(key_id)
    expect(page.get_by_label("Secret access key")).to_have_value("")
    assert page.context.cookies() == []


def test_the_login_page_passes_axe(page: Page, reader: dict[str, Any]) -> None:
    page.goto(reader["url"] + CONSOLE + "/login")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    serious = [(v["id"], v["impact"]) for v in result["violations"]
               if v["impact"] in ("serious", "critical")]
    assert serious == [], serious

