"""Tab completion for ``%nbprod`` and ``%%nbprod`` lines.

One IPython matcher (the v2 API, which ipykernel uses for JupyterLab, Notebook and VS Code)
driven by the magic's own argparse parser, so completions cannot drift from what the magic
accepts: subcommands, check kinds, each (sub)command's flags, a flag's choices, pandas
DataFrames for ``snapshot VAR``, that frame's columns for ``--target``, ``--id``, ``--pii`` and
``--not-pii``, fitted estimators (objects with ``predict``) for ``model --var`` and metric
names for ``--metric``. Other lines are left to IPython's own matchers.

Completion runs on every key press, so it inspects user objects no further than their type,
``columns`` and whether they have ``predict``.
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

from IPython.core.completer import SimpleCompletion, context_matcher

IDENTIFIER = "nbprod.magic_matcher"
COLUMN_FLAGS = {"--target", "--id", "--pii", "--not-pii"}


def install(shell: Any) -> None:
    """Add the matcher to ``shell`` (once: a ``%reload_ext`` replaces the earlier one)."""
    from .magics import build_parser

    parser = build_parser()

    @context_matcher(identifier=IDENTIFIER)
    def nbprod_matcher(context: Any) -> dict[str, Any]:
        return match(parser, shell.user_ns, context)

    matchers = shell.Completer.custom_matchers
    matchers[:] = [m for m in matchers if getattr(m, "matcher_identifier", None) != IDENTIFIER]
    matchers.append(nbprod_matcher)


def match(parser: argparse.ArgumentParser, namespace: dict[str, Any], context: Any) -> dict:
    """The completions of the ``%nbprod`` line under the cursor (none for any other line)."""
    none = {"completions": [], "suppress": False}
    if getattr(context, "cursor_line", 0) != 0 and "%%nbprod" in context.full_text:
        return none  # a cell magic's options are on its first line only
    line = context.line_with_cursor
    stripped = line.lstrip()
    for prefix in ("%%nbprod", "%nbprod"):
        if stripped.startswith(prefix + " ") or stripped == prefix:
            rest = stripped[len(prefix):]
            break
    else:
        return none
    if not rest:
        return none  # the cursor is still on the magic's name
    try:
        words = shlex.split(rest)
    except ValueError:  # an open quote
        return none
    token = "" if rest.endswith((" ", "\t")) or not words else words.pop()
    candidates = [(c, kind) for c, kind in _candidates(parser, namespace, words, token)
                  if c.startswith(token)]
    return {"completions": [SimpleCompletion(text, type=kind) for text, kind in candidates],
            "matched_fragment": token, "suppress": bool(candidates)}


def _candidates(parser: argparse.ArgumentParser, namespace: dict[str, Any], words: list[str],
                token: str) -> list[tuple[str, str]]:
    parser, positionals = _innermost(parser, words)
    subcommands = _subcommands(parser)
    previous = words[-1] if words else ""
    action = _flag(parser, previous)
    if action is not None and action.nargs != 0:  # the flag's value
        if action.choices:
            return [(str(c), "value") for c in action.choices]
        if previous in COLUMN_FLAGS:
            return [(c, "column") for c in _columns(namespace, positionals)]
        if previous == "--var":
            return [(n, "estimator") for n, v in _user_variables(namespace)
                    if not isinstance(v, type) and hasattr(v, "predict")]
        if previous == "--metric":
            return [(m, "metric") for m in _metric_names()]
        return []
    if token.startswith("-"):
        used = set(words)
        return [(f, "flag") for a in parser._actions for f in a.option_strings
                if f not in used and f.startswith("--")]
    if subcommands and not positionals:
        return [(name, "subcommand") for name in subcommands]
    expected = [a for a in parser._actions if not a.option_strings and a.nargs != 0
                and not isinstance(a, argparse._SubParsersAction)]
    if len(positionals) < len(expected):
        dest = expected[len(positionals)].dest
        if dest == "var":
            return [(n, "DataFrame") for n, v in _user_variables(namespace) if _is_frame(v)]
        if dest == "metric":
            return [(m, "metric") for m in _metric_names()]
    return []


def _innermost(parser: argparse.ArgumentParser, words: list[str]
               ) -> tuple[argparse.ArgumentParser, list[str]]:
    """The (sub)parser the words lead to, and the positional words given to it so far."""
    positionals: list[str] = []
    skip = False
    for word in words:
        if skip:
            skip = False
            continue
        action = _flag(parser, word)
        if action is not None:
            skip = action.nargs != 0 and "=" not in word
            continue
        subcommands = _subcommands(parser)
        if subcommands and word in subcommands and not positionals:
            parser, positionals = subcommands[word], []
            continue
        positionals.append(word)
    return parser, positionals


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flag(parser: argparse.ArgumentParser, word: str) -> argparse.Action | None:
    return parser._option_string_actions.get(word.split("=", 1)[0]) if word.startswith("-") \
        else None


_SHELL_NAMES = {"In", "Out", "exit", "quit", "get_ipython"}


def _user_variables(namespace: dict[str, Any]) -> list[tuple[str, Any]]:
    return sorted(((name, value) for name, value in namespace.items()
                   if not name.startswith("_") and name not in _SHELL_NAMES),
                  key=lambda item: item[0])


def _is_frame(value: Any) -> bool:
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns")


def _columns(namespace: dict[str, Any], positionals: list[str]) -> list[str]:
    frame = namespace.get(positionals[0]) if positionals else None
    return [str(c) for c in frame.columns] if _is_frame(frame) else []


def _metric_names() -> list[str]:
    from sklearn.metrics import get_scorer_names

    from ..core.metrics import ALIASES

    return sorted(set(ALIASES) | set(get_scorer_names()))
