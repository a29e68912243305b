"""Train the chosen depth of a stored study once more, by its own protocol, and save the model.

The file is a self-contained Keras model (raw uint8 images of any size in,
class probabilities out; keras.saving.load_model needs no depth-tuner) with
its model card inside: the study's answer and the depths within noise of
it, the val_accuracy measured at export, the protocol, data and weights.
Export costs one plain training, in cached mode too (a cached trial never
holds the whole model); a --keep-checkpoints file of that trial is reused.
The study is only read. The card goes to stdout as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys

EPILOG = """examples:
  depth-tuner export --study tf_flowers --output flowers.keras            # the best depth
  depth-tuner export --study tf_flowers --output flowers.keras --choose cheapest
  depth-tuner export --study tf_flowers --output flowers.keras --depth 12 \\
      --finetune-epochs 10 --include-validation                         # longer, on all images
  depth-tuner predict --model flowers.keras photos/ > predictions.csv
"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    from objectives.best import CHOICES
    from tuner.cli.options import STORAGE_HELP, count, positive_int

    p.add_argument("--study", required=True, help="study name")
    p.add_argument("--storage", help=STORAGE_HELP)
    p.add_argument("--output", required=True, metavar="PATH.keras", help="where to write the model")
    p.add_argument("--depth", type=count, help="train this depth instead of the study's choice")
    p.add_argument("--choose", choices=CHOICES, default="best",
                   help="which depth: the best by the study's objective, or the cheapest / most "
                        "accurate of it and the depths within noise of it (show names them)")
    p.add_argument("--head-epochs", type=positive_int, help="phase 1 epochs (default: the study's)")
    p.add_argument("--finetune-epochs", type=positive_int, help="phase 2 epochs (default: the study's)")
    p.add_argument("--include-validation", action="store_true",
                   help="also train on the validation images (the card then has no held-out accuracy)")
    p.add_argument("--data-dir", help="TFDS data folder, if the study's dataset is not in ~/tensorflow_datasets")


def run(args: argparse.Namespace) -> int:
    from tuner.export.train import ExportOptions, export_study
    from tuner.progress import Reporter

    options = ExportOptions(depth=args.depth, choose=args.choose, head_epochs=args.head_epochs,
                            finetune_epochs=args.finetune_epochs,
                            include_validation=args.include_validation, data_dir=args.data_dir)
    exported = export_study(args.study, storage=args.storage, output=args.output, options=options,
                            reporter=Reporter())
    json.dump(exported.card, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0
