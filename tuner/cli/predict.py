"""Predict the class of images with a model written by ``depth-tuner export``.

One CSV row per image on stdout (path, class, probability; --top K adds the
next classes), progress and skipped files on stderr. Folders are walked for
image files; a file that cannot be read is one line on stderr and skipped.
Exit code 0 when at least one image was predicted, 2 when none was.
"""

from __future__ import annotations

import argparse
import sys
import time

PROGRESS_SECONDS = 5.0

EPILOG = """examples:
  depth-tuner predict --model flowers.keras photo.jpg
  depth-tuner predict --model flowers.keras photos/ more/ --top 3 > predictions.csv
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from tuner.cli.options import positive_int

    p.add_argument("--model", required=True, metavar="PATH.keras", help="a model written by depth-tuner export")
    p.add_argument("images", nargs="+", metavar="IMAGE_OR_FOLDER", help="image files or folders of them")
    p.add_argument("--top", type=positive_int, default=1, help="how many classes per image, best first")


def run(args: argparse.Namespace) -> int:
    from tuner.data.sources import IMAGE_EXTENSIONS
    from tuner.errors import UsageError
    from tuner.export.card import read_card
    from tuner.export.predict import check_top, predict
    from tuner.progress import Reporter

    reporter = Reporter()
    card = read_card(args.model)
    check_top(args.top, card)
    held = card.get("val_accuracy")
    reporter.say(f"model {args.model}: {card['backbone']} depth {card['depth']} of study "
                 f"{card['study']}, {len(card['class_names'])} classes"
                 + (f", val_accuracy {held:.4f} at export" if held is not None else ""))
    skipped = []

    def on_skip(s):
        skipped.append(s)
        print(f"depth-tuner predict: skipped {s.path}: {s.reason}", file=sys.stderr)

    last = [time.perf_counter()]

    def on_progress(n: int) -> None:  # a line every few seconds, not every batch
        if time.perf_counter() - last[0] >= PROGRESS_SECONDS:
            last[0] = time.perf_counter()
            reporter.say(f"predicted {n} images")

    frame = predict(args.model, args.images, top=args.top, on_skip=on_skip, on_progress=on_progress)
    reporter.say(f"predicted {len(frame)} images" + (f", skipped {len(skipped)}" if skipped else ""))
    if frame.empty:
        raise UsageError(f"no image could be predicted ({len(skipped)} skipped): pass image files "
                         f"or folders holding {', '.join(IMAGE_EXTENSIONS)} files")
    frame.to_csv(sys.stdout, index=False, float_format="%.6f")
    return 0

