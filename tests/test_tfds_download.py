"""The download path, offline: TFDS's own tf_flowers builder fetches, checks and prepares the data.

``depth-tuner search --dataset tf_flowers`` on an empty ``--data-dir`` makes
TFDS download ``flower_photos.tgz`` and build the dataset. Here the only thing
replaced is the network: an HTTP proxy on 127.0.0.1, opened by the test,
answers TFDS's own ``requests`` GET of the real URL with a small archive laid
out like the real one (``flower_photos/<class>/*.jpg`` and ``LICENSE.txt``).
The same listening socket is the network probe. TFDS's checksum registry (its
``checksums.tsv`` for tf_flowers, found through ``DatasetBuilder.code_path``)
gets this archive's size and sha256 in place of the real one's, the line
``--register_checksums`` would write for it, so TFDS validates the download as
it validates the real one. Everything else, the builder, the download manager,
the archive iteration and the preparation into ``--data-dir``, is TFDS's own.

This caught tensorflow-datasets 4.9.10 importing ``importlib_resources``
(in ``code_path``) without declaring it on Python >= 3.9
(tensorflow/datasets#11212): ``setup.cfg`` declares it.
"""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import os
import tarfile
import threading

import numpy as np
import pytest
from conftest import FAST, run_cli
from PIL import Image

URL = "http://download.tensorflow.org/example_images/flower_photos.tgz"
CLASSES = ("daisy", "dandelion", "roses", "sunflowers", "tulips")
PER_CLASS = 4  # 20 images: 16 training (train[:80%]), 4 validation (train[80%:])

# Loaded in the search's process through PYTHONPATH: TFDS's checksum registry
# lists the test's archive for URL, in the checksums.tsv line format.
SITECUSTOMIZE = '''\
"""Test only (tests/test_tfds_download.py): TFDS's registered checksum of {url}
is that of the test's archive. Nothing else changes."""
import importlib.abc
import importlib.machinery
import sys

_MODULE = "tensorflow_datasets.core.download.checksums"
_LINE = {line!r}
_LOG = {log!r}


def _register(module):
    load = module.load_url_infos

    def load_url_infos(path):
        infos = load(path)
        if {url!r} in infos:
            infos.update(module._parse_url_infos([_LINE]))
            with open(_LOG, "a") as f:
                f.write(str(path) + "\\n")
        return infos

    module.load_url_infos = load_url_infos


class _AfterImport(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != _MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            _register(module)

        spec.loader.exec_module = exec_module
        return spec


sys.meta_path.insert(0, _AfterImport())
'''


def _jpeg(rng, colour) -> bytes:
    pixels = np.clip(rng.normal(colour, 20, size=(40, 48, 3)), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG")
    return buf.getvalue()


def _write_archive(path) -> None:
    """flower_photos.tgz as download.tensorflow.org serves it, with a few tiny images per class."""
    rng = np.random.default_rng(0)

    def add(tar, name, data: bytes | None = None):  # None: a folder
        info = tarfile.TarInfo(name)
        if data is None:
            info.type, info.mode = tarfile.DIRTYPE, 0o755
        else:
            info.size = len(data)
        tar.addfile(info, None if data is None else io.BytesIO(data))

    with tarfile.open(path, "w:gz") as tar:
        add(tar, "flower_photos/")
        add(tar, "flower_photos/LICENSE.txt", b"All images in this archive are made by the test.\n")
        for k, cls in enumerate(CLASSES):
            add(tar, f"flower_photos/{cls}/")
            for i in range(PER_CLASS):
                add(tar, f"flower_photos/{cls}/{1000 + i}_test.jpg", _jpeg(rng, 40 + 45 * k))


class _Proxy(http.server.ThreadingHTTPServer):
    """The network as TFDS sees it: serves ``URL`` (a proxy is asked for absolute URLs), 404 else."""

    daemon_threads = True

    def __init__(self, body: bytes):
        self.body, self.requests = body, []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(handler):  # noqa: N805 - the handler's self; the server is self
                self.requests.append(handler.path)
                if handler.path != URL:
                    handler.send_error(404)
                    return
                handler.send_response(200)
                handler.send_header("Content-Type", "application/x-gzip")
                handler.send_header("Content-Length", str(len(self.body)))
                handler.end_headers()
                handler.wfile.write(self.body)

            def log_message(handler, *args):  # noqa: N805
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def flowers_online(tmp_path):
    """(environment for the search's process, proxy, checksum log): the network is the proxy."""
    archive = tmp_path / "flower_photos.tgz"
    _write_archive(archive)
    body = archive.read_bytes()
    line = f"{URL}\t{len(body)}\t{hashlib.sha256(body).hexdigest()}\tflower_photos.tgz"
    site = tmp_path / "site"
    site.mkdir()
    log = tmp_path / "registered.txt"
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE.format(url=URL, line=line, log=str(log)))
    proxy = _Proxy(body)
    thread = threading.Thread(target=proxy.serve_forever, daemon=True)
    thread.start()
    env = {
        "DEPTH_TUNER_NETWORK_PROBE": proxy.address,  # conftest's closed port, opened for this test
        "http_proxy": f"http://{proxy.address}", "HTTP_PROXY": f"http://{proxy.address}",
        "no_proxy": "", "NO_PROXY": "",
        "PYTHONPATH": os.pathsep.join(p for p in (str(site), os.environ.get("PYTHONPATH")) if p),
    }
    try:
        yield env, proxy, log
    finally:
        proxy.shutdown()
        proxy.server_close()
        thread.join(timeout=5)


def test_search_downloads_and_prepares_tf_flowers(tmp_path, flowers_online):
    env, proxy, log = flowers_online
    data_dir = tmp_path / "tfds"
    storage = f"sqlite:///{tmp_path}/flowers.db"
    result = run_cli(["search", "--dataset", "tf_flowers", "--data-dir", str(data_dir), *FAST,
                      "--trials", "1", "--study", "flowers", "--storage", storage],
                     cwd=tmp_path, env_extra=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]

    # TFDS fetched the real URL once, through the network (the proxy), and
    # validated it against its checksum registry, read from the builder's checksums.tsv.
    assert proxy.requests == [URL]
    assert any(path.endswith(os.path.join("tf_flowers", "checksums.tsv"))
               for path in log.read_text().splitlines()), log.read_text()
    (record,) = (data_dir / "downloads" / "tf_flowers").glob("*.INFO")  # TFDS's note of what it fetched
    fetched = json.loads(record.read_text())
    assert fetched["urls"] == [URL] and fetched["url_info"] == {
        "checksum": hashlib.sha256(proxy.body).hexdigest(), "size": len(proxy.body),
        "filename": "flower_photos.tgz"}

    # The builder prepared the dataset into --data-dir: every image, in its one split.
    (version,) = os.listdir(data_dir / "tf_flowers")
    info = json.loads((data_dir / "tf_flowers" / version / "dataset_info.json").read_text())
    (split,) = info["splits"]
    assert split["name"] == "train" and sum(map(int, split["shardLengths"])) == PER_CLASS * len(CLASSES)
    assert f"data tf_flowers: 16 training, 4 validation images, {len(CLASSES)} classes" in result.stderr
    assert "Downloading and preparing" in result.stderr  # TFDS's own progress, kept off stdout
    assert "Downloading" not in result.stdout and "prepared" not in result.stdout

    # ... and the search trained on it.
    shown = run_cli(["show", "--study", "flowers", "--storage", storage, "--format", "json"], cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    trials = json.loads(shown.stdout)["trials"]
    assert len(trials) == 1 and trials[0]["state"] == "COMPLETE", trials
    assert 0 <= trials[0]["val_accuracy"] <= 1


def test_a_download_that_cannot_be_prepared_is_one_line(tmp_path, flowers_online):
    env, proxy, _ = flowers_online
    proxy.body = proxy.body[:-100]  # cut short on the way: not the registered size and checksum
    storage = f"sqlite:///{tmp_path}/flowers.db"
    # TensorFlow's log level as a user has it (conftest's 2 lets a cuInit ERROR line through).
    result = run_cli(["search", "--dataset", "tf_flowers", "--data-dir", str(tmp_path / "tfds"), *FAST,
                      "--trials", "1", "--study", "flowers", "--storage", storage],
                     cwd=tmp_path, env_extra={**env, "TF_CPP_MIN_LOG_LEVEL": "3"}, timeout=300)
    assert result.returncode == 2, result.stderr[-3000:]
    # TFDS's own download bars come first (progress goes to stderr), then the one line.
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert "Traceback" not in result.stderr and len([x for x in lines if "error" in x]) == 1, result.stderr
    bars = ("Downloading and preparing dataset", "Dl Completed...", "Dl Size...")
    assert all(x.replace("\x1b[A", "").startswith(bars) for x in lines[:-1]), lines
    assert lines[-1].startswith("depth-tuner search: error: dataset 'tf_flowers' could not be "
                               "downloaded and prepared in "), lines[-1]
    assert "NonMatchingChecksumError" in lines[-1] and "--data-dir" in lines[-1], lines[-1]
    assert proxy.requests == [URL]
    assert not (tmp_path / "flowers.db").exists()  # no study was created
