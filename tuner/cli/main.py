"""Entry point: ``depth-tuner <command> ...``.

Each command module exposes ``add_arguments(parser)``, ``run(args) -> int``
and its ``EPILOG`` (examples). A ``UsageError`` anywhere becomes one line on
stderr and exit code 2. Stdout carries only results; progress, and with
``--verbose`` the libraries' own start-up and INFO lines, go to stderr.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
import sys

from tuner.quiet import quiet_tensorflow

# name -> (module, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "search": ("tuner.cli.search", "search the unfreeze depth (creates or resumes a stored study)"),
    "narrow": ("tuner.cli.narrow", "train depths by the thesis' coarse-to-fine narrowing (stored, resumable)"),
    "sweep": ("tuner.cli.sweep", "train every listed depth, for measured landscapes (stored, resumable)"),
    "show": ("tuner.cli.show", "table of a stored study's trials and its best depth"),
    "compare": ("tuner.cli.compare", "replay strategies (narrowing, samplers) on a landscape without training"),
    "live-compare": ("tuner.cli.live_compare", "run strategies for real with the same budget of training seconds"),
    "report": ("tuner.cli.report", "tables and figures of a stored study"),
    "export": ("tuner.cli.export", "train the chosen depth again and save a self-contained Keras model"),
    "predict": ("tuner.cli.predict", "class probabilities of images from an exported model (CSV)"),
    "cache": ("tuner.cli.cache", "list or clear the cached activations (~/.cache/depth-tuner)"),
}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Examples kept as written; every option's default shown unless its help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or "default" in text
                or action.default is None or action.default is False
                or action.default == argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


VERBOSE_HELP = "also show the libraries' start-up lines (TensorFlow's C++ log) and INFO logs"


def build_parser() -> argparse.ArgumentParser:
    from tuner.store.storage import STUDIES_ENV

    parser = _Parser(
        prog="depth-tuner",
        description="Find how many top backbone layers to unfreeze for the most "
        "validation accuracy per second of training.",
        epilog=f"Studies are stored in ./studies/STUDY.db unless --storage is given; set "
        f"{STUDIES_ENV}=FOLDER to keep (and find) them in FOLDER from anywhere. "
        "'depth-tuner COMMAND --help' shows a command's options and examples.",
    )
    from tuner import __version__

    parser.add_argument("--version", action="version", version=f"depth-tuner {__version__}")
    parser.add_argument("--verbose", action="store_true", help=VERBOSE_HELP)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name, (module, help_text) in COMMANDS.items():
        mod = importlib.import_module(module)
        p = sub.add_parser(name, help=help_text, description=(mod.__doc__ or help_text).strip(),
                           epilog=getattr(mod, "EPILOG", None), formatter_class=HelpFormatter)
        mod.add_arguments(p)
        # Also accepted after the command; SUPPRESS keeps a --verbose given before it.
        p.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS, help=VERBOSE_HELP)
        p.set_defaults(_run=mod.run)
    return parser


def _sigterm_as_interrupt(signum, frame):
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    import optuna

    from tuner.errors import UsageError

    parser = build_parser()
    args = parser.parse_args(argv)
    quiet_tensorflow(verbose=args.verbose)  # before anything imports TensorFlow
    optuna.logging.set_verbosity(optuna.logging.INFO if args.verbose else optuna.logging.WARNING)
    signal.signal(signal.SIGTERM, _sigterm_as_interrupt)
    # A shell starts background jobs with SIGINT ignored, and Python keeps
    # that; an interrupt must still stop a search cleanly.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        code = int(args._run(args) or 0)
        sys.stdout.flush()  # a closed pipe shows here, not at exit
        return code
    except BrokenPipeError:
        # The reader stopped early (`depth-tuner show | head -1`): not an
        # error. Python's documented remedy: point stdout at devnull so the
        # flush at exit does not fail again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UsageError as exc:
        message = " ".join(str(exc).split())  # one line, whatever a library said
        print(f"depth-tuner {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # before or after the search loop, which handles its own
        print(f"depth-tuner {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
