"""Values of secret settings never appear in plan, validate, status, run, logs or errors."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from kstream_cli.errors import handle_errors
from kstream_cli.main import cli

from kstream.errors import BrokerError
from kstream.io import kafka
from kstream.pipeline.view import redact, remember_secrets
from kstream.tools.process import free_port

SECRETS = ("hunter2-sasl-pw", "key-pass-77", "sr-user:sr-pass-99", "tok-abc-123")


def pipeline(tmp_path: Path, bootstrap: str) -> Path:
    path = tmp_path / "secret.yaml"
    path.write_text(f"""\
pipeline: secret
kafka:
  bootstrap.servers: {bootstrap}
  sasl.username: alice
  sasl.password: {SECRETS[0]}
  ssl.key.password: {SECRETS[1]}
  sasl.oauthbearer.client.secret: {SECRETS[3]}
schema_registry:
  url: mock://secret
  basic.auth.user.info: {SECRETS[2]}
sources:
  - topic: in
operators:
  - filter: "x > 1"
sinks:
  - topic: out
""")
    return path


@pytest.fixture
def fast_admin(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give up on an unreachable broker after 1 s instead of 10 s."""
    monkeypatch.setattr(kafka, "Admin", functools.partial(kafka.Admin, timeout_s=1.0))


def assert_no_secret(text: str) -> None:
    for secret in (*SECRETS, "sr-pass-99"):
        assert secret not in text, text


@pytest.mark.parametrize(
    "args",
    [
        ["validate"],
        ["plan"],
        ["status"],
        ["run", "--bounded", "-v"],
    ],
)
def test_commands_never_show_secret_values(
    tmp_path: Path, fast_admin: None, args: list[str], caplog: pytest.LogCaptureFixture
) -> None:
    path = pipeline(tmp_path, f"127.0.0.1:{free_port()}")
    command = [args[0], str(path), *args[1:]]
    if args[0] == "run":
        command += ["--state-dir", str(tmp_path / "state")]
    with caplog.at_level(logging.DEBUG):
        result = CliRunner().invoke(cli, command, obj={})
    assert_no_secret(result.output + result.stderr + caplog.text)
    if args[0] in ("status", "run"):
        assert result.exit_code == 3 and "error:" in result.stderr  # the broker is unreachable


def test_library_errors_are_redacted() -> None:
    remember_secrets({"sasl.password": SECRETS[0]})
    error = kafka.translate(
        kafka.KafkaLibraryError(f"authentication with {SECRETS[0]} failed"), "connect"
    )
    assert str(error) == "connect: authentication with *** failed"


def test_the_cli_error_line_is_redacted() -> None:
    remember_secrets({"ssl.key.password": SECRETS[1]})

    @click.command()
    @handle_errors
    def boom() -> None:
        raise BrokerError(f"refused: key password {SECRETS[1]} / jaas password='x9y8z7'")

    result = CliRunner().invoke(boom, [])
    assert result.exit_code == 3
    assert result.stderr.strip() == "error: refused: key password *** / jaas password='***'"


def test_redact_forms() -> None:
    settings = {"basic.auth.user.info": "bob:pa55-word", "url": "http://h"}
    assert redact("GET http://bob:pa55-word@h and pa55-word", settings) == (
        "GET http://***@h and ***"
    )
    assert redact("no secrets here", {"sasl.username": "alice"}) == "no secrets here"


def test_url_credentials_are_masked() -> None:
    assert redact("cannot reach https://svc:pa55@registry:8081/x") == (
        "cannot reach https://svc:***@registry:8081/x"
    )
