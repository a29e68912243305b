"""Entry point: ``depth-tuner <command> ...``.

Each command module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
A ``UsageError`` anywhere becomes one line on stderr and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "search": ("tuner.cli.search", "search the unfreeze depth (creates or resumes a stored study)"),
    "narrow": ("tuner.cli.narrow", "train depths by the thesis' coarse-to-fine narrowing (stored, resumable)"),
    "sweep": ("tuner.cli.sweep", "train every listed depth, for measured landscapes (stored, resumable)"),
    "show": ("tuner.cli.show", "table of a stored study's trials and its best depth"),
    "compare": ("tuner.cli.compare", "replay strategies (narrowing, samplers) on a landscape without training"),
    "live-compare": ("tuner.cli.live_compare", "run strategies for real with the same budget of training seconds"),
    "report": ("tuner.cli.report", "tables and figures of a stored study"),
}


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="depth-tuner",
        description="Find how many top backbone layers to unfreeze for the most "
        "validation accuracy per second of training.",
    )
    from tuner import __version__

    parser.add_argument("--version", action="version", version=f"depth-tuner {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip())
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    _quiet_tensorflow()
    from tuner.errors import UsageError

    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    parser = build_parser()
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    # A shell starts background jobs with SIGINT ignored, and Python keeps
    # that; an interrupt must still stop a search cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return int(args._run(args) or 0)
    except UsageError as exc:
        message = " ".join(str(exc).split())  # one line, whatever a library said
        print(f"depth-tuner {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before or after the search loop, which handles its own
        print(f"depth-tuner {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
