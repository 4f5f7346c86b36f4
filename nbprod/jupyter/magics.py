"""The ``%nbprod`` / ``%%nbprod`` magics: a thin skin over :class:`nbprod.capture.session.Session`.

Options go on the magic line, code in the cell body. Every mistake in what the user typed is an
IPython ``UsageError``: one clear line, no traceback, a "did you mean" where one fits.
"""

from __future__ import annotations

import argparse
import difflib
import os
import shlex
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from ..exceptions import HelpShown, NbprodError

CELL_COMMANDS = {"features", "model"}
CHECK_KINDS = ("overfit", "metric", "cv", "baseline", "data", "bounds")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {self._improve(message)}")

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        if message:
            raise UsageError(message.strip())
        raise HelpShown

    def _improve(self, message: str) -> str:
        if message.startswith("unrecognized arguments:"):
            bad = message.split(":", 1)[1].split()
            flags = self.flags()
            for tok in bad:
                if tok.startswith("-"):
                    near = difflib.get_close_matches(tok.split("=")[0], flags, n=1)
                    if near:
                        return f"unknown flag {tok!r}; did you mean {near[0]!r}?"
                    return f"unknown flag {tok!r}; flags: {', '.join(sorted(set(flags)))}"
            return f"unexpected argument(s): {' '.join(bad)}"
        if "invalid choice" in message and ("SUBCOMMAND" in message or "KIND" in message):
            tok = message.split("'")[1] if "'" in message else ""
            choices = list(self._subcommands())
            near = difflib.get_close_matches(tok, choices, n=1)
            hint = f"; did you mean {near[0]!r}?" if near else ""
            return f"unknown subcommand {tok!r}{hint} (one of: {', '.join(choices)})"
        return message

    def flags(self) -> list[str]:
        """Every option string this parser takes (``--role``, ``-h``, ...)."""
        return [s for a in self._actions for s in a.option_strings]

    def _subcommands(self) -> dict[str, _Parser]:
        for a in self._actions:  # noqa: SIM110
            if isinstance(a.choices, dict):  # only a subparsers action maps names to parsers
                return dict(a.choices)
        return {}

    def check_flags(self, argv: list[str]) -> None:
        """Name an unknown flag (with a suggestion) before argparse complains of anything else."""
        commands = self._subcommands()
        command = next((t for t in argv if not t.startswith("-")), None)
        if commands and command not in commands:
            return  # argparse names the unknown subcommand, with a suggestion
        parser = commands.get(command or "", self)
        if parser is not self and command:
            parser.check_flags([t for t in argv if t != command])
            return
        flags = parser.flags()
        for tok in argv:
            if tok.startswith("-") and not _is_number(tok) and tok.split("=")[0] not in flags:
                parser.error(f"unrecognized arguments: {tok}")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def build_parser() -> _Parser:
    p = _Parser(prog="%nbprod", description="Capture a notebook model and package it for production.")
    sub = p.add_subparsers(dest="command", metavar="SUBCOMMAND", parser_class=_Parser)

    s = sub.add_parser("init", help="name the model (default: the notebook's name)")
    s.add_argument("name", metavar="NAME")

    s = sub.add_parser("snapshot", help="record a data frame as the train or valid snapshot")
    s.add_argument("var", metavar="VAR", help="name of a pandas DataFrame in the notebook")
    s.add_argument("--role", required=True, choices=["train", "valid"])
    s.add_argument("--target", required=True, metavar="COL", help="the label column")
    s.add_argument("--id", metavar="COL", help="row identifier, passed through to predictions")
    s.add_argument("--pii", metavar="COL,...", default="",
                   help="comma-separated columns never stored raw in the artifact")
    s.add_argument("--not-pii", metavar="COL,...", default="",
                   help="comma-separated columns that look personal but are not: kept raw")
    s.add_argument("--sample", type=int, default=1000, metavar="N",
                   help="rows kept for replay and review (default 1000)")

    s = sub.add_parser("features", help="(cell) run the cell; capture the feature function as source")
    s.add_argument("--fn", metavar="NAME", help="the feature function (default: `features` or the only one)")

    s = sub.add_parser("model", help="(cell) run the cell; capture the fitted estimator")
    s.add_argument("--var", default="model", metavar="NAME",
                   help="variable holding the fitted estimator (default: model)")

    s = sub.add_parser("package", help="write the self-verifying artifact")
    s.add_argument("path", metavar="PATH")
    s.add_argument("--force", action="store_true", help="package even though checks failed (recorded)")
    s.add_argument("--overwrite", action="store_true", help="replace an existing artifact at PATH")
    s.add_argument("--no-mlflow", action="store_true", help="do not log the packaging run to MLflow")
    s.add_argument("--register", action="store_true",
                   help="also create an MLflow Model Registry version (first one: champion)")
    s.add_argument("--sign", metavar="KEY.pem",
                   help="sign the artifact with this Ed25519 private key (nbprod.sig)")
    s.add_argument("--notebook", metavar="NB",
                   help="the training notebook to store for retraining (default: this notebook, "
                        "when the frontend or NBPROD_NOTEBOOK tells its path)")
    s.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="a bar of the packaging steps on stderr (default: when stderr is a "
                        "terminal, so terminal IPython shows it and Jupyter does not)")

    s = sub.add_parser("check", help="run a check on the captures: " + ", ".join(CHECK_KINDS))
    kinds = s.add_subparsers(dest="kind", metavar="KIND", parser_class=_Parser)
    k = kinds.add_parser("overfit", help="gap between train and valid on a metric")
    k.add_argument("--metric", required=True, metavar="M", help="scorer name or alias (roc_auc, r2, mae, ...)")
    k.add_argument("--max-gap", required=True, metavar="G", help="fail above this gap (metric units)")
    k.add_argument("--warn-gap", metavar="W", help="warn above this gap")
    k = kinds.add_parser("metric", help="validation metric threshold")
    k.add_argument("metric", metavar="M", help="scorer name or alias")
    k.add_argument("--min", metavar="X", help="fail below X (scores)")
    k.add_argument("--max", metavar="X", help="fail above X (losses)")
    k = kinds.add_parser("cv", help="K-fold cross-validation stability on train")
    k.add_argument("--metric", required=True, metavar="M")
    k.add_argument("--folds", default="5", metavar="K", help="number of folds (default 5)")
    k.add_argument("--max-std", required=True, metavar="S", help="fail above this standard deviation")
    k = kinds.add_parser("baseline", help="compare with a dummy and a depth-3 tree")
    k.add_argument("--metric", required=True, metavar="M")
    k.add_argument("--min-gain", required=True, metavar="G", help="required gain over the dummy")
    k = kinds.add_parser("data", help="quality and leakage checks on the snapshots")
    for flag, default, what in (
        ("--max-null-rate", "0.3", "warn above this null rate in any column"),
        ("--max-duplicate-share", "0.01", "warn above this share of duplicate training rows"),
        ("--max-overlap", "0", "fail above this share of valid rows also in train"),
        ("--leakage-threshold", "0.98", "fail when one column alone scores this well"),
        ("--min-class-share", "0.05", "warn when a class is rarer than this"),
        ("--max-out-of-range", "0.01", "warn above this share of valid values outside train range"),
    ):
        k.add_argument(flag, default=default, metavar="X", help=f"{what} (default {default})")
    k = kinds.add_parser("bounds", help="sanity limits on outputs, enforced at scoring time")
    k.add_argument("--min", metavar="A", help="lowest acceptable prediction (regression)")
    k.add_argument("--max", metavar="B", help="highest acceptable prediction (regression)")
    k.add_argument("--classes", metavar="C,...", help="acceptable classes (classifiers)")
    k.add_argument("--policy", default="flag", choices=["flag", "drop", "fail"],
                   help="what scoring does with a violating row (default flag)")
    k.add_argument("--margin", default="0.1", metavar="F",
                   help="widen derived bounds by F x the reference range (default 0.1)")

    s = sub.add_parser("status", help="what is captured and which checks passed")
    shown = s.add_mutually_exclusive_group()
    shown.add_argument("--static", dest="mode", action="store_const", const="static",
                       help="static HTML even where widgets work")
    shown.add_argument("--widgets", dest="mode", action="store_const", const="widgets",
                       help="the interactive dashboard even where no widget frontend is detected")
    return p


def reference(parser: argparse.ArgumentParser | None = None) -> str:
    """The whole ``%nbprod`` reference: the magic's help, then every subcommand's and every
    check kind's (what ``%nbprod?`` shows)."""
    parser = parser or build_parser()
    parts = [parser.format_help()]

    def walk(p: argparse.ArgumentParser) -> None:
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub in action.choices.values():
                    parts.append(sub.format_help())
                    walk(sub)

    walk(parser)
    return ("Capture a notebook model for production: %nbprod SUBCOMMAND [options], or "
            "%%nbprod features / %%nbprod model on a cell's first line.\n\n"
            + "\n".join(parts))


def _reject_duplicates(args: list[str]) -> None:
    seen: set[str] = set()
    for tok in args:
        if tok.startswith("--"):
            flag = tok.split("=", 1)[0]
            if flag in seen and flag != "--help":
                raise UsageError(f"%nbprod: flag {flag} given twice; give it once.")
            seen.add(flag)


def notebook_path(user_ns: dict[str, Any]) -> str | None:
    """The notebook's path when the frontend tells the kernel (JupyterLab, VS Code)."""
    for candidate in (os.environ.get("NBPROD_NOTEBOOK"), user_ns.get("__vsc_ipynb_file__"),
                      user_ns.get("__session__"), os.environ.get("JPY_SESSION_NAME")):
        if isinstance(candidate, str) and candidate.endswith(".ipynb"):
            if os.path.isfile(candidate):
                return os.path.abspath(candidate)
            local = os.path.basename(candidate)  # a server-relative path: the kernel runs beside it
            return os.path.abspath(local) if os.path.isfile(local) else candidate
    return None


@magics_class
class NbprodMagics(Magics):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self._session: Any = None
        self.parser = build_parser()
        if getattr(shell, "Completer", None) is not None:
            from .completion import install

            install(shell)  # tab completion of %nbprod lines

    @property
    def session(self) -> Any:
        """The :class:`~nbprod.capture.session.Session` behind this shell's magics (made on first use)."""
        if self._session is None:
            from ..capture.session import Session

            self._session = Session()
        return self._session

    @line_cell_magic
    def nbprod(self, line: str, cell: str | None = None) -> Any:
        """Capture a notebook model for production. Run `%nbprod --help` for subcommands."""
        try:
            argv = shlex.split(line)
        except ValueError as exc:
            raise UsageError(f"%nbprod: cannot parse the line: {exc}") from None
        _reject_duplicates(argv)
        self.parser.check_flags(argv)
        try:
            args = self.parser.parse_args(argv)
        except HelpShown:
            return None
        if args.command is None:
            raise UsageError("%nbprod needs a subcommand; see `%nbprod --help`.")
        is_cell = cell is not None
        if args.command in CELL_COMMANDS and not is_cell:
            raise UsageError(
                f"{args.command} is a cell magic: put `%%nbprod {args.command}` on the first line "
                "of the cell."
            )
        if args.command not in CELL_COMMANDS and is_cell:
            raise UsageError(f"{args.command} is a line magic: use `%nbprod {args.command} ...`.")
        if self.session.notebook_path is None:
            self.session.notebook_path = notebook_path(self.shell.user_ns)
        handler = getattr(self, f"_do_{args.command}")
        try:
            return handler(args, cell) if is_cell else handler(args)
        except NbprodError as exc:
            raise UsageError(str(exc)) from None

    # -- subcommands --------------------------------------------------------------------
    def _do_init(self, args: argparse.Namespace) -> None:
        self.session.init(args.name)
        self._show_text(f"nbprod: model {args.name!r}")

    def _do_snapshot(self, args: argparse.Namespace) -> None:
        df = self._variable(args.var, "snapshot")
        pii = [c.strip() for c in args.pii.split(",") if c.strip()]
        not_pii = [c.strip() for c in args.not_pii.split(",") if c.strip()]
        both = [c for c in pii if c in not_pii]
        if both:
            raise UsageError(f"%nbprod snapshot: --pii and --not-pii both name {both[0]!r}; say "
                             "one or the other.")
        snap = self._warning_lines(lambda: self.session.snapshot(
            df, role=args.role, target=args.target, id=args.id, pii=pii,
            sample_size=args.sample, source=args.var, not_pii=not_pii,
        ))
        self._show_text("nbprod: " + snap.describe())

    def _do_features(self, args: argparse.Namespace, cell: str) -> None:
        self._run(cell, "features")
        source = self.shell.transform_cell(cell)
        cap = self.session.features(source=source, namespace=self.shell.user_ns, name=args.fn)
        self.session.cells[-1]["source"] = cell
        n = len(cap.code.source.splitlines())
        self._show_text(f"nbprod: captured {cap.fn_name}() as source ({n} lines)")

    def _do_model(self, args: argparse.Namespace, cell: str) -> None:
        self._run(cell, "model")
        if args.var not in self.shell.user_ns:
            raise UsageError(
                f"The model cell did not define {args.var!r}; assign the fitted estimator to "
                f"`{args.var}` or name its variable with --var NAME."
            )
        cap = self.session.model(self.shell.user_ns[args.var], var=args.var, cell_source=cell)
        self._show_text(f"nbprod: captured {args.var} = {cap.class_name} ({cap.task})")

    def _do_package(self, args: argparse.Namespace) -> Any:
        """Package; when nothing is written, first display why as JSON for the JupyterLab
        extension (:mod:`nbprod.frontend`), then fail the cell as before."""
        from .frontend import PackageRefusal

        try:
            return self._package(args)
        except (NbprodError, UsageError) as exc:
            self._display(PackageRefusal.of(exc, path=args.path, checks=self.session.checks))
            raise
        except Exception as exc:
            self._display(PackageRefusal.of(exc, path=args.path, checks={}, outcome="error"))
            raise

    def _package(self, args: argparse.Namespace) -> Any:
        from ..lifecycle.retrain import OUTPUT_ENV

        if args.register and args.no_mlflow:
            raise UsageError("--register needs MLflow; drop --no-mlflow.")
        if args.notebook:
            if not os.path.isfile(args.notebook):
                raise UsageError(f"--notebook {args.notebook!r} does not exist.")
            self.session.notebook_path = os.path.abspath(args.notebook)
        path = os.environ.get(OUTPUT_ENV) or args.path  # retraining chooses the output
        result = self.session.package(
            path, force=args.force, overwrite=args.overwrite, log_to_mlflow=not args.no_mlflow,
            sign=args.sign, progress=args.progress,
        )
        if args.register:
            from ..tracking.registry import register

            result.registry = register(result.path)
        self._display(result)

    def _do_check(self, args: argparse.Namespace) -> None:
        from .display import ResultsView

        if args.kind is None:
            raise UsageError(f"%nbprod check needs a KIND: one of {', '.join(CHECK_KINDS)}.")
        options = {k: v for k, v in vars(args).items() if k not in ("command", "kind")}
        results = self.session.check(args.kind, **options)
        self._display(ResultsView(results, title=f"nbprod check {args.kind}"))

    def _do_status(self, args: argparse.Namespace) -> None:
        from .status import status_view

        self._display(status_view(self.session, mode=args.mode, shell=self.shell))

    # -- helpers ------------------------------------------------------------------------
    def _run(self, cell: str, kind: str) -> None:
        """Run the cell body; if it fails (traceback already shown), fail the magic cell too."""
        result = self.shell.run_cell(cell, store_history=False)
        if not result.success:
            err = result.error_in_exec or result.error_before_exec
            raise UsageError(
                f"The {kind} cell raised {type(err).__name__}: {err}; nothing was captured."
            )

    def _variable(self, name: str, what: str) -> Any:
        ns = self.shell.user_ns
        if not name.isidentifier():
            raise UsageError(f"{what}: VAR must be a variable name. Got {name!r}.")
        if name not in ns:
            import pandas as pd

            frames = [k for k, v in ns.items() if isinstance(v, pd.DataFrame) and not k.startswith("_")]
            near = difflib.get_close_matches(name, frames, n=1)
            hint = f" Did you mean {near[0]!r}?" if near else ""
            raise UsageError(f"{what}: no variable {name!r} in the notebook.{hint}")
        return ns[name]

    def _warning_lines(self, call: Any) -> Any:
        """Run ``call``; show each nbprod warning it raised as one line on stderr, every time
        (Python's filters would show a repeated warning once)."""
        import sys
        import warnings

        from ..exceptions import PersonalDataWarning

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", PersonalDataWarning)
            result = call()
        for w in caught:
            if issubclass(w.category, PersonalDataWarning):
                print(f"nbprod: WARNING: {w.message}", file=sys.stderr)  # noqa: T201
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
        return result

    def _display(self, obj: Any) -> None:
        from IPython.display import display

        display(obj)

    def _show_text(self, text: str) -> None:
        print(text)  # noqa: T201 - a magic's confirmation belongs in the cell output


# `%nbprod?` shows the magic's docstring: make it the whole reference
NbprodMagics.nbprod.__doc__ = reference()
