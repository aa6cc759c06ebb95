"""Writes bn.keras, paper.keras and expected.json with keras_googlenet 0.1 (the flat layout).

Run once from a checkout of 0.1 (commit e3f8090), with that checkout first on the path:

    PYTHONPATH=/path/to/0.1 python tests/artifacts/checkpoint_0_1/make.py

Each checkpoint is what 0.1's `train` writes for its variant (a short run on the
digits, so its config names 0.1's modules: ``keras_googlenet.layers``,
``keras_googlenet.task``), with every weight then set to a few numbers per
tensor, so that the file compresses to kilobytes. expected.json holds 0.1's probabilities for a fixed input.
"""

import json
import pathlib
import tempfile
import zipfile

import h5py
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
SIZE = 79  # the smallest that both variants take with aux heads: the smallest files


def fixed_input(size=SIZE):
    """Raw pixels in [0, 255], the same in 0.1 and in the test."""
    ramp = np.linspace(0.0, 255.0, size * size * 3, dtype=np.float32).reshape(1, size, size, 3)
    return (ramp * 7.0) % 256.0


def constant_weights(h5_path):
    """A few numbers per tensor, so that the file compresses and activations stay finite.

    Kernels hold +-1 / fan-in times a factor that repeats every 5 output
    channels, batch norms the identity with a small shift, and the optimizer's
    slots zero.
    """
    with h5py.File(h5_path, "r+") as file:
        names = []
        file.visititems(lambda name, item: names.append(name) if isinstance(item, h5py.Dataset) else None)
        for index, name in enumerate(sorted(names)):
            data = file[name]
            if name.startswith("optimizer/") or data.dtype.kind != "f":
                value = 0
            elif "batch_normalization" in name:  # vars 0-3: gamma, beta, moving mean, moving variance
                value = {"0": 1.0, "1": 0.01 * (index % 5 - 2), "2": 0.0, "3": 1.0}[name.rsplit("/", 1)[1]]
            else:
                fan_in = int(np.prod(data.shape[:-1])) if data.ndim > 1 else 1
                column = np.arange(data.shape[-1] if data.ndim else 1) % 5  # so that the classes differ
                value = (1.0 + 0.05 * (index % 7)) / fan_in * np.array([1.0, -0.5, 0.8, -0.3, 0.6])[column]
            data[...] = np.broadcast_to(value, data.shape).astype(data.dtype)


def write_checkpoint(variant, folder):
    from keras_googlenet import training

    run = folder / variant
    training.train(data="digits", output_dir=run, epochs=1, steps_per_epoch=2, batch_size=8, image_size=SIZE, variant=variant, verbose=0)
    with zipfile.ZipFile(run / "best.keras") as archive:
        archive.extractall(run / "parts")
    constant_weights(run / "parts" / "model.weights.h5")
    target = HERE / f"{variant}.keras"
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name in ("metadata.json", "config.json", "model.weights.h5"):
            archive.write(run / "parts" / name, name)
    return target


def main():
    from keras_googlenet import model_info

    assert model_info.__name__ == "keras_googlenet.model_info", "run this with the 0.1 layout"
    expected = {"made_by": "keras_googlenet 0.1 (e3f8090)", "size": SIZE, "probabilities": {}}
    with tempfile.TemporaryDirectory() as folder:
        for variant in ("bn", "paper"):
            model = model_info.load_checkpoint(write_checkpoint(variant, pathlib.Path(folder)))
            expected["probabilities"][variant] = model.predict(fixed_input(), verbose=0)[0].tolist()
    (HERE / "expected.json").write_text(json.dumps(expected, indent=1) + "\n")


if __name__ == "__main__":
    main()
