"""`broker configure`'s block in the AWS config file: idempotent, every byte outside the block
left as it was, and a profile the user already has never overwritten."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from broker.login.awsconfig import (
    BlockError,
    Profile,
    apply,
    markers,
    profile_names,
    read,
    render,
    split,
    write,
)
from broker.login.commands import profiles_for

URL = "https://broker.example.test"
COMMAND = "/opt/broker/bin/broker credential-process --url https://broker.example.test"
PROFILES = [Profile("admin", "admin", "eu-west-1"), Profile("deployer", "deployer")]

USER_FILE = """[default]
region = us-east-1

[profile admin]
role_arn = arn:aws:iam::111122223333:role/mine
source_profile = default
"""

lines = st.one_of(
    st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=30),
    st.sampled_from(
        [
            "[profile admin]",
            "[default]",
            "[ profile  deployer ]",
            "[sso-session corp]",
            "region = eu-west-1",
            "# >>> broker (https://other.example) — managed by broker configure >>>",
            "",
        ]
    ),
)
endings = st.sampled_from(["\n", "\r\n", ""])
texts = st.lists(st.tuples(lines, endings), max_size=12).map(
    lambda parts: "".join(line + end for line, end in parts)
)
profile_lists = st.lists(
    st.builds(
        Profile,
        st.from_regex(r"[a-z][\w+=,.@-]{0,12}", fullmatch=True),
        st.from_regex(r"[a-z][\w+=,.@-]{0,12}", fullmatch=True),
        st.none() | st.sampled_from(["eu-west-1", "us-east-2"]),
    ),
    max_size=4,
    unique_by=lambda p: p.name,
)


def _has_markers(text: str) -> bool:
    start, end = markers(URL)
    return start in text or end in text


@given(texts, profile_lists, profile_lists)
def test_idempotent_and_nothing_outside_touched(
    text: str, first: list[Profile], second: list[Profile]
) -> None:
    if _has_markers(text):
        return
    once, _ = apply(text, URL, first, COMMAND)
    assert once.startswith(text)
    assert apply(once, URL, first, COMMAND)[0] == once
    twice, _ = apply(once, URL, second, COMMAND)
    before, block, after = split(twice, URL)
    assert (before, after) == (split(once, URL)[0], split(once, URL)[2])
    assert twice.startswith(text)
    assert block is not None
    assert apply(twice, URL, second, COMMAND)[0] == twice


@given(texts, texts, profile_lists)
def test_a_block_in_the_middle_is_replaced_in_place(
    above: str, below: str, profiles: list[Profile]
) -> None:
    if _has_markers(above + below) or (above and not above.endswith("\n")):
        return
    old_block = render(URL, [Profile("old", "old")], COMMAND)
    new, _ = apply(above + old_block + below, URL, profiles, COMMAND)
    before, block, after = split(new, URL)
    assert before == above
    assert after == below
    assert block is not None
    assert "[profile old]" not in block


@given(texts, profile_lists)
def test_a_profile_outside_the_block_is_never_written(text: str, profiles: list[Profile]) -> None:
    if _has_markers(text):
        return
    new, skipped = apply(text, URL, profiles, COMMAND)
    _, block, _ = split(new, URL)
    assert block is not None
    taken = profile_names(text)
    assert set(skipped) == {p.name for p in profiles if p.name in taken}
    assert not profile_names(block) & taken


def test_the_block_as_written() -> None:
    new, skipped = apply(USER_FILE, URL, PROFILES, COMMAND)
    assert skipped == ["admin"]
    assert new == USER_FILE + (
        "\n"
        f"# >>> broker ({URL}) — managed by broker configure >>>\n"
        "[profile deployer]\n"
        f"credential_process = {COMMAND} --role deployer\n"
        "\n"
        f"# <<< broker ({URL}) <<<\n"
    )


@pytest.mark.parametrize(
    "damaged",
    [
        f"{markers(URL)[0]}\n[profile x]\n",
        f"[profile x]\n{markers(URL)[1]}\n",
        render(URL, [], COMMAND) * 2,
    ],
    ids=["no end", "no start", "two blocks"],
)
def test_a_damaged_block_is_refused(damaged: str) -> None:
    with pytest.raises(BlockError):
        apply(damaged, URL, PROFILES, COMMAND)


def test_blocks_of_two_brokers_live_side_by_side() -> None:
    other = "https://other.example"
    text, _ = apply("", URL, PROFILES, COMMAND)
    text, _ = apply(text, other, [Profile("reader", "reader")], "broker credential-process")
    again, _ = apply(text, URL, [Profile("deployer", "deployer")], COMMAND)
    assert split(again, other)[1] == split(text, other)[1]
    assert "[profile admin]" not in again


def test_repeated_role_names_get_the_account_and_the_arn() -> None:
    roles = [
        {
            "name": "admin",
            "arn": "arn:aws:iam::111122223333:role/admin",
            "account_id": "111122223333",
        },
        {
            "name": "admin",
            "arn": "arn:aws:iam::444455556666:role/admin",
            "account_id": "444455556666",
        },
        {
            "name": "reader",
            "arn": "arn:aws:iam::444455556666:role/reader",
            "account_id": "444455556666",
        },
    ]
    profiles = profiles_for(roles, prefix="corp-", region="eu-west-1")
    assert [(p.name, p.role) for p in profiles] == [
        ("corp-admin-111122223333", "arn:aws:iam::111122223333:role/admin"),
        ("corp-admin-444455556666", "arn:aws:iam::444455556666:role/admin"),
        ("corp-reader", "reader"),
    ]


def test_write_is_atomic_keeps_the_mode_and_follows_a_symlink(tmp_path: Path) -> None:
    real = tmp_path / "real-config"
    real.write_bytes(b"[default]\nregion = \xff\n")
    real.chmod(0o640)
    link = tmp_path / "config"
    link.symlink_to(real)
    text = read(link)
    new, _ = apply(text, URL, PROFILES, COMMAND)
    write(link, new)
    assert link.is_symlink()
    assert real.read_bytes().startswith(b"[default]\nregion = \xff\n")
    assert stat.S_IMODE(real.stat().st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config", "real-config"]
