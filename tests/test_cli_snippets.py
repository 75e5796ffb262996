"""The command-line page's snippets: each shell gets the same four variables, quoted for it."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from broker.browser.pages import cli_snippets, exports
from broker.identity import Credentials, RoleGrant

GRANT = RoleGrant(
    name="admin",
    arn="arn:aws:iam::111122223333:role/admin",
    account_id="111122223333",
    account_name="Production",
    max_session_seconds=3600,
    rule="admins",
)


def _creds(secret: str = "wJalr/K7MDENG+bPxRfiCY=") -> Credentials:  # noqa: S107 (a made-up key)
    return Credentials(
        access_key_id="ASIAEXAMPLE",
        secret_access_key=secret,
        session_token="IQoJb3JpZ2luX2Vj/+=" * 40,
        expiration=datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC),
        assumed_role_arn="arn:aws:sts::111122223333:assumed-role/admin/alice",
    )


def test_every_shell_sets_the_same_four_variables() -> None:
    by_shell = {e["id"]: e["text"] for e in exports(_creds())}
    assert list(by_shell) == ["bash", "fish", "powershell", "cmd"]
    token = "IQoJb3JpZ2luX2Vj/+=" * 40
    assert f"export AWS_SESSION_TOKEN={token}\n" in by_shell["bash"]
    assert f"set -gx AWS_SESSION_TOKEN '{token}'\n" in by_shell["fish"]
    assert f"$Env:AWS_SESSION_TOKEN = '{token}'\n" in by_shell["powershell"]
    assert f'set "AWS_SESSION_TOKEN={token}"\r\n' in by_shell["cmd"]
    for text in by_shell.values():
        assert text.count("AWS_") == 4
        assert "2030-01-02T03:04:05Z" in text


@pytest.mark.parametrize(
    ("shell", "expected"),
    [("fish", r"'it\'s a \\ test'"), ("powershell", "'it''s a \\ test'")],
    ids=["fish", "powershell"],
)
def test_a_quote_in_a_value_stays_inside_the_string(shell: str, expected: str) -> None:
    text = next(e["text"] for e in exports(_creds(secret="it's a \\ test")) if e["id"] == shell)
    assert expected in text


@pytest.mark.parametrize("char", ['"', "%", "^", "!", "\n"], ids=repr)
def test_no_cmd_tab_for_what_cmd_cannot_carry_verbatim(char: str) -> None:
    shells = [e["id"] for e in exports(_creds(secret="abc" + char))]
    assert shells == ["bash", "fish", "powershell"]


def test_credentials_file_profile_and_countdown() -> None:
    snippets = cli_snippets(_creds(), GRANT)
    assert str(snippets["credentials_file"]).startswith(
        "[admin]\naws_access_key_id = ASIAEXAMPLE\n"
    )
    assert snippets["expiration_epoch_ms"] == 1893553445000
    assert snippets["credential_process_command"] == ""
    assert snippets["login_commands"] == ""


def test_broker_login_and_configure_instead_of_a_file_that_never_renews() -> None:
    snippets = cli_snippets(_creds(), GRANT, base_url="https://broker.example")
    assert snippets["login_commands"] == (
        "broker login --url https://broker.example\nbroker configure --url https://broker.example\n"
    )
    assert snippets["credential_process_config"] == (
        "[profile admin]\ncredential_process = broker credential-process"
        " --url https://broker.example --role admin\n"
    )
    assert not any("cat " in str(v) for v in snippets.values())
    assert "credential_process_file" not in snippets


def test_credential_process_command_only_when_tokens_are_taken() -> None:
    snippets = cli_snippets(_creds(), GRANT, base_url="https://broker.example", tokens=True)
    assert snippets["credential_process_command"] == (
        "[profile admin]\ncredential_process = broker credential-process"
        " --url https://broker.example --role admin --token-command 'your-token-command'\n"
    )
