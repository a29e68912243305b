"""Does predict on a folder study's validation files give the exported model's val_accuracy?

Run after ``depth-tuner export`` and ``depth-tuner predict --model M FOLDER > pred.csv`` (commands in
RESULTS.md). A process that imports only Keras, TensorFlow and pandas, never ``tuner``, scores
(a) predict's CSV on the validation files (the split Keras draws from the study's seed and
fraction) and (b) the exported model alone on the raw files (any size: it resizes inside).

    python benchmarks/export_roundtrip.py FOLDER MODEL.keras pred.csv
"""
import json, os, sys, zipfile
import numpy as np, pandas as pd, keras, tensorflow as tf
folder, model_path, csv = sys.argv[1:4]
card = json.loads(zipfile.ZipFile(model_path).read("depth_tuner_card.json"))
val = keras.utils.image_dataset_from_directory(folder, validation_split=card["data"]["val_fraction"],
    subset="validation", seed=card["protocol"]["seed"], batch_size=None, verbose=False)
truth = {p: os.path.basename(os.path.dirname(p)) for p in val.file_paths}
rows = pd.read_csv(csv, dtype={"class": str}).set_index("path")
acc_csv = np.mean([rows.loc[p, "class"] == c for p, c in truth.items()])
model = keras.saving.load_model(model_path)
names = card["class_names"]
hits = []
for p, c in truth.items():
    img = tf.io.decode_image(tf.io.read_file(p), channels=3, expand_animations=False)[None].numpy()
    hits.append(names[int(np.argmax(model.predict(img, verbose=0)[0]))] == c)
assert "tuner" not in sys.modules
print(f"validation files {len(truth)}; card val_accuracy {card['val_accuracy']:.4f}; "
      f"predict CSV {acc_csv:.4f}; raw files through the model {np.mean(hits):.4f}")
