"""Every subcommand's ``--help`` begins with a description, and every argument has a help text
(issue 25 item 9): the parser is walked, subcommands of subcommands included."""

from __future__ import annotations

import argparse
from collections.abc import Iterator

from colabtray.cli import build_parser


def _parsers(
    parser: argparse.ArgumentParser, name: str = "colabtray"
) -> Iterator[tuple[str, argparse.ArgumentParser, str | None]]:
    """Each parser with its command line and the line the list of commands shows for it."""
    yield name, parser, None
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            listed = {choice.dest: choice.help for choice in action._choices_actions}
            for sub_name, sub in action.choices.items():
                for found, child, line in _parsers(sub, f"{name} {sub_name}"):
                    yield found, child, listed[sub_name] if child is sub else line


def test_every_command_has_a_description_and_every_argument_a_help_text() -> None:
    missing = []
    for name, parser, listed in _parsers(build_parser()):
        if not (parser.description or "").strip():
            missing.append(f"{name}: no description")
        if name != "colabtray" and not (listed or "").strip():
            missing.append(f"{name}: no line in its parent's list of commands")
        for action in parser._actions:
            if action.help == argparse.SUPPRESS:  # hidden on purpose (--at-login)
                continue
            if not (action.help or "").strip():
                missing.append(f"{name}: {action.metavar or action.dest} has no help")
    assert missing == []


def test_the_walk_sees_nested_commands_and_their_arguments() -> None:
    """The walk itself: it reaches ``secret allow`` and its two positionals."""
    found = {name: parser for name, parser, _ in _parsers(build_parser())}
    assert "colabtray secret allow" in found
    dests = {action.dest for action in found["colabtray secret allow"]._actions}
    assert {"name", "runtime"} <= dests
