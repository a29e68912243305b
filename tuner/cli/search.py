"""Search the unfreeze depth: Keras Tuner trains and times, an Optuna study decides and stores.

Rerunning the same command resumes the study; --trials is the total number of
measured trials the study should end with.
"""

from __future__ import annotations

import argparse
import re

from tuner.cli.options import STORAGE_HELP, count, positive_int

EPILOG = """examples:
  depth-tuner search --dataset tf_flowers --trials 13
  depth-tuner search --dataset tf_flowers --trials 20      # resumes, adds 7
  depth-tuner search --dataset tf_flowers --fake-data --weights none --image-size 32 \\
      --head-lr 1e-3 --finetune-lr 1e-4 --trials 3        # offline demo, study tf_flowers-fake
  depth-tuner search --dataset ./my_images --trials 13     # folder of class sub-folders
"""




def _objective_name(text: str) -> str:
    """A known objective, normalised (cheapest-within:0.010 -> cheapest-within:0.01)."""
    from objectives import get_objective
    from tuner.errors import UsageError

    try:
        return get_objective(text).name
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _strategy_name(text: str) -> str:
    """A known strategy (``tuner.strategies.registry``), as typed: aliases and +confirmN are resolved later."""
    from tuner.errors import UsageError
    from tuner.strategies.registry import parse_strategy

    try:
        parse_strategy(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text.strip()


def _fake_examples(text: str) -> tuple[int, int]:
    m = re.fullmatch(r"(\d+)[,:/](\d+)", text)
    if not m or int(m[1]) < 1 or int(m[2]) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: write TRAIN,VAL image counts, e.g. 96,32")
    return int(m[1]), int(m[2])


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuner.strategies.confirm import DEFAULT_CONFIRM

    add_run_arguments(p, strategy=True)
    p.add_argument("--confirm", type=count, default=None, metavar="N",
                   help="of --trials, up to N last trials re-measure the leader or its runner-up with "
                   f"new seeds until they are separated beyond noise (default {DEFAULT_CONFIRM}, "
                   "at most (--trials - 1) / 4 unless given; 0: none)")




def add_run_arguments(p: argparse.ArgumentParser, *, strategy: bool) -> None:
    """Options of every command that trains (search, narrow, sweep, live-compare)."""
    from objectives import DEFAULT_OBJECTIVE, OBJECTIVE_CHOICES
    from studies.presets import DEFAULT_FAKE_EXAMPLES, PRESETS
    from tuner.model.protocol import DEFAULT_FINETUNE_LR, DEFAULT_HEAD_LR
    from tuner.model.space import SCALES
    from tuner.strategies.registry import DEFAULT_STRATEGY, STRATEGIES
    from tuner.trials.prefix_cache import DEFAULT_CACHE_GIB

    d = p.add_argument_group("data")
    d.add_argument("--dataset", required=True,
                   help=f"TFDS name, a thesis preset ({', '.join(PRESETS)}), or a folder of class sub-folders")
    d.add_argument("--train-split", help="TFDS slice for training (default: the preset's, else train[:80%%])")
    d.add_argument("--val-split", help="TFDS slice for validation (default: the preset's, else train[80%%:])")
    d.add_argument("--val-fraction", type=float, default=0.2, help="validation share of a folder")
    d.add_argument("--data-dir", help="TFDS data directory with the dataset already on disk "
                   "(default: TFDS's own, ~/tensorflow_datasets)")
    d.add_argument("--strict-data", action="store_true",
                   help="refuse a folder holding files that are not images or do not decode "
                   "(default: skip them and say so)")
    d.add_argument("--fake-data", action="store_true",
                   help="generated images with the dataset's class count, learnable offline "
                   "(demo and smoke runs; recorded as fake, default study NAME-fake)")
    d.add_argument("--fake-examples", type=_fake_examples, default=DEFAULT_FAKE_EXAMPLES, metavar="TRAIN,VAL",
                   help="how many fake images (default {},{})".format(*DEFAULT_FAKE_EXAMPLES))

    m = p.add_argument_group("model and protocol")
    m.add_argument("--backbone", default="MobileNetV2",
                   help="MobileNetV2, EfficientNetB0, ResNet50 or MobileNetV3Small")
    m.add_argument("--weights", default="imagenet", help="imagenet, none, or a .weights.h5/.h5 file")
    m.add_argument("--image-size", type=positive_int, default=224, help="square input size in pixels")
    m.add_argument("--batch-size", type=positive_int, default=32, help="images per training step")
    m.add_argument("--head-epochs", type=positive_int, default=3, help="phase 1: the head alone")
    m.add_argument("--finetune-epochs", type=positive_int, default=3, help="phase 2: the top k layers too")
    m.add_argument("--head-lr", type=float, default=DEFAULT_HEAD_LR, help="Adam learning rate of phase 1")
    m.add_argument("--finetune-lr", type=float, default=DEFAULT_FINETUNE_LR,
                   help="Adam learning rate of phase 2 (lower: the backbone's weights are pretrained)")
    m.add_argument("--dropout", type=float, default=0.2, help="dropout rate before the head's dense layer")
    m.add_argument("--seed", type=int, default=0, help="seeds the model, data order and sampler")
    m.add_argument("--jit-compile", action="store_true",
                   help="train with XLA (part of the recorded protocol; default off on CPU and GPU alike, "
                   "where Keras' own default turns it on only when a GPU is visible)")

    s = p.add_argument_group("search and study")
    if strategy:
        s.add_argument("--trials", type=positive_int, default=13,
                       help="total measured trials the study should have (13: the thesis' count)")
        s.add_argument("--strategy", "--sampler", dest="strategy", default=DEFAULT_STRATEGY,
                       type=_strategy_name, metavar="NAME",
                       help=f"strategy that picks the next depth: {', '.join(STRATEGIES)} "
                       "(tuner/strategies/registry.py; an Optuna sampler, or one that queues its own depths); "
                       "--sampler is its older name")
        s.add_argument("--depth-scale", default="log", choices=list(SCALES),
                       help="how the sampler sees the depth (log: shallow depths get more of the budget)")
    s.add_argument("--stop-early", choices=["on", "off"], default=None, type=str.lower,
                   help="stop a trial after a fine-tune epoch when the accuracy its depth needs at its "
                   "price is out of reach (README: Stopping after an epoch); default: on for a new study, "
                   "as recorded for a stored one")
    s.add_argument("--objective", default=DEFAULT_OBJECTIVE, type=_objective_name,
                   help=f"what 'best' means: {', '.join(OBJECTIVE_CHOICES)} (README: What best means)")
    s.add_argument("--min-depth", type=count, default=0, help="shallowest depth to try (0 = head only)")
    s.add_argument("--max-depth", type=count, default=None,
                   help="deepest depth to try (default: every backbone layer)")
    s.add_argument("--study", help="study name (default: derived from --dataset; NAME-fake with --fake-data)")
    s.add_argument("--storage", help=STORAGE_HELP)
    s.add_argument("--max-consecutive-failures", type=count, default=3,
                   help="stop after this many failed trials in a row (0 = never)")
    s.add_argument("--keep-checkpoints", metavar="DIR", help="keep each trial's trained weights in DIR (default: off)")
    c = p.add_argument_group("trial cost")
    c.add_argument("--trial-mode", default="cached", choices=["cached", "plain"],
                   help="cached: phase 1 once per study, phase 2 on cached activations of "
                   "the frozen part, priced as the plain protocol; plain: every trial runs the protocol as written")
    c.add_argument("--cache-dir", metavar="DIR",
                   help="where cached activations live (default: ~/.cache/depth-tuner/prefix)")
    c.add_argument("--cache-size", type=float, default=DEFAULT_CACHE_GIB, metavar="GIB",
                   help="cap in GiB on the cache on disk, and on what one trial loads; "
                   "a depth whose activations do not fit runs plain")
    c.add_argument("--artifacts-dir", metavar="DIR",
                   help="where the shared head phase is kept (default: beside the study file; "
                   "with several machines, a folder they share)")
    s.add_argument("--in-process", action="store_true",
                   help="train in this process instead of one process per trial (faster start, "
                   "but TensorFlow keeps ~150 MB per trial)")
    s.add_argument("--gpu", type=int, default=None, metavar="N",
                   help="train this worker's trials on GPU N alone (as nvidia-smi numbers them; one worker "
                   "per GPU, README: Scaling out); default: the GPUs CUDA_VISIBLE_DEVICES shows, trials "
                   "on the first")
    s.add_argument("--quiet", action="store_true", help="no progress output")


# Flags of the training commands that are the CLI's own rather than DepthSearch options: the
# command and how the CLI talks, the budget (run()'s argument), and what sweep, narrow and
# live-compare hand to run_strategy themselves. Every other flag is an API option of the same name.
CLI_ONLY = frozenset({"command", "verbose", "quiet", "trials", "depths", "repeats", "thesis_grids",
                      "strategies", "budget_seconds", "output"})


def api_options(args: argparse.Namespace) -> dict:
    """The parsed flags as DepthSearch's keywords; a flag that is neither an option nor CLI-only
    is a bug here, not something to drop without a word."""
    from tuner.api import DepthSearch

    given = {name: value for name, value in vars(args).items() if not name.startswith("_")}
    lost = set(given) - set(DepthSearch.option_names()) - CLI_ONLY
    if lost:
        raise RuntimeError(f"flags that reach no DepthSearch option: {', '.join(sorted(lost))}")
    return {name: value for name, value in given.items() if name not in CLI_ONLY}


def run(args: argparse.Namespace) -> int:
    return run_strategy(args, strategy=args.strategy, scale=args.depth_scale, trials=args.trials)


def run_strategy(args: argparse.Namespace, *, strategy: str, scale: str = "linear",
                 trials: int | None = None, study_suffix: str = "", depths=None, repeats: int = 1,
                 budget_seconds: float | None = None, show: bool = True) -> int:
    """Hand the options to the API (tuner.api.DepthSearch), run the study, print its table.

    ``strategy`` is a name of ``tuner.strategies.registry.STRATEGIES``; ``depths`` and
    ``repeats`` are a sweep's.
    """
    from tuner.api import DepthSearch
    from tuner.progress import Reporter
    from tuner.errors import SearchStopped
    from tuner.store.storage import default_storage, default_study_name

    options = api_options(args)
    study = args.study or default_study_name(args.dataset, fake=args.fake_data) + study_suffix
    storage = args.storage or default_storage(study)
    options.update(strategy=strategy, depth_scale=scale, study=study, storage=storage, progress=not args.quiet)
    search = DepthSearch(**options)
    reporter = Reporter(quiet=args.quiet)
    try:
        outcome = search.run_strategy(trials=trials, depths=depths, repeats=repeats,
                                      budget_seconds=budget_seconds, reporter=reporter)
    except SearchStopped as exc:
        reporter.say(str(exc))
        return 1
    if outcome.interrupted:
        return 130
    if not show:
        return 0
    from tuner.cli.show import print_study

    print_study(study=study, storage=storage, fmt="table")
    return 0
