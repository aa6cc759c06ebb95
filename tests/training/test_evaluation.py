"""Evaluation of a checkpoint: top-1 and top-5 with 1, 10 or 144 crops per image."""

import numpy as np
import pytest

import keras_googlenet as kg
from keras_googlenet.data import augment, datasets, pipeline
from keras_googlenet.training import evaluation
from keras_googlenet.artifacts import model_info

import digits_models


def test_single_crop_top1_matches_keras_evaluate_on_the_same_split(digits_checkpoint):
    scores = evaluation.evaluate(digits_checkpoint, "digits", split="validation", crops=1)
    assert scores["examples"] == datasets.load_examples("digits", "validation")[1].num_examples["validation"]

    # The same images through Keras' own metric, from the training pipeline.
    model = model_info.load_checkpoint(digits_checkpoint)
    model.compile(metrics=["sparse_categorical_accuracy"], loss="sparse_categorical_crossentropy")
    dataset, _ = pipeline.make_dataset("digits", split="validation", image_size=digits_models.SIZE, batch_size=64, variant="bn")
    keras_top1 = model.evaluate(dataset.map(lambda x, y: (x, y["main"])), verbose=0, return_dict=True)["sparse_categorical_accuracy"]
    assert scores["top1"] == pytest.approx(keras_top1, abs=1e-6)
    assert scores["top1"] > 0.5  # the fixture learned the digits
    assert scores["top1"] <= scores["top5"] <= 1.0


def test_ten_crops_average_the_softmax_of_the_ten_views_of_each_image(digits_checkpoint):
    scores = evaluation.evaluate(digits_checkpoint, "digits", split="validation", crops=10, limit=6)
    assert (scores["examples"], scores["crops"]) == (6, 10)

    # The same average computed here with the public preprocessing and predict.
    model = model_info.load_checkpoint(digits_checkpoint)
    examples, _ = datasets.load_examples("digits", "validation")
    hits1 = hits5 = 0
    for image, label in examples.take(6):
        views = kg.preprocess_input(augment.multi_crop(image, digits_models.SIZE, "10crop").numpy(), variant="bn")
        mean = model.predict(views, verbose=0).mean(axis=0)
        ranked = np.argsort(-mean, kind="stable")
        hits1 += int(ranked[0] == label.numpy())
        hits5 += int(label.numpy() in ranked[:5])
    assert scores["top1"] == pytest.approx(hits1 / 6)
    assert scores["top5"] == pytest.approx(hits5 / 6)


def test_144_crops_are_evaluated_per_image(digits_checkpoint):
    scores = evaluation.evaluate(digits_checkpoint, "digits", split="validation", crops=144, limit=1, batch_size=48)
    assert (scores["examples"], scores["crops"]) == (1, 144)
    assert scores["top1"] in (0.0, 1.0) and scores["top5"] >= scores["top1"]


@pytest.mark.parametrize(
    "arguments, message",
    [
        ({"crops": 5}, r"`crops` must be one of \(1, 10, 144\). Received: crops=5"),
        ({"limit": 0}, "Received: limit=0"),
        ({"split": "test"}, "Received: split='test'"),
    ],
)
def test_bad_arguments_raise_one_line_errors(digits_checkpoint, arguments, message):
    with pytest.raises(ValueError, match=message) as error:
        evaluation.evaluate(digits_checkpoint, "digits", **arguments)
    assert "\n" not in str(error.value)


def test_a_missing_checkpoint_is_reported_by_name(tmp_path):
    with pytest.raises(FileNotFoundError, match="Received: checkpoint="):
        evaluation.evaluate(tmp_path / "missing.keras")


def test_the_evaluate_command_names_an_unreadable_file_scores_the_others_and_exits_1(tmp_path, capsys, caplog):
    from PIL import Image

    from keras_googlenet import cli

    import tiny_googlenet

    tiny_googlenet.tiny_googlenet(input_shape=(32, 32, 3), classes=2, aux_heads=False).save(tmp_path / "best.keras")
    for split in ("train", "val"):
        for name, level in (("cat", 30), ("dog", 220)):
            (tmp_path / "photos" / split / name).mkdir(parents=True)
            Image.fromarray(np.full((40, 50, 3), level, np.uint8)).save(tmp_path / "photos" / split / name / "a.png")
    (tmp_path / "photos" / "val" / "dog" / "b.jpg").write_text("not an image")
    assert cli.main(["evaluate", str(tmp_path / "best.keras"), "--data", str(tmp_path / "photos")]) == 1
    out = capsys.readouterr().out
    assert "(2 images, 1 crop(s) each)" in out and out.rstrip().endswith("; 1 unreadable file(s) skipped, named above")
    assert any(record.getMessage().startswith(f"Skipped {tmp_path / 'photos' / 'val' / 'dog' / 'b.jpg'}: ") for record in caplog.records)
