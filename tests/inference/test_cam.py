"""Grad-CAM maps: where they peak, when they are flat, their shapes, heads, backends and errors."""

import functools
import pathlib
import textwrap

import numpy as np
import pytest

import lane
from markers import needs_torch

import keras_googlenet as kg
from keras_googlenet.inference import cam

# Grad-CAM: outside the quick tier's scope (the builder, the weight readers,
# preprocessing, the CLI's checks, the metadata writer, storage), so the full tier only.
pytestmark = pytest.mark.slow

SIZE = 96


def _positive_classifier(model, head="main", zero_class=None):
    """Every channel raises every class (so the map follows the activations); one class optionally blind."""
    layer = model.get_layer(cam.classifier_layer(head))
    kernel, bias = layer.get_weights()
    kernel = np.abs(np.random.default_rng(0).normal(size=kernel.shape)).astype("float32")
    if zero_class is not None:
        kernel[:, zero_class] = 0.0
    layer.set_weights([kernel, np.zeros_like(bias)])
    return model


def _patch_images(corners, size=SIZE, patch=32):
    """Black images with a noise patch in one corner each: the only thing a network can respond to."""
    rng = np.random.default_rng(1)
    images = np.zeros((len(corners), size, size, 3), "float32")
    for i, (top, left) in enumerate(corners):
        y, x = (0 if top else size - patch), (0 if left else size - patch)
        images[i, y : y + patch, x : x + patch] = rng.uniform(0, 1, (patch, patch, 3))
    return images


def test_main_map_peaks_where_the_only_object_is():
    size = 224  # 7 x 7 maps: 96 px gives 3 x 3, whose centre cell sees every corner
    model = _positive_classifier(kg.GoogLeNet(variant="paper", input_shape=(size, size, 3), classes=3, aux_heads=False))
    corners = [(True, True), (True, False), (False, True), (False, False)]
    heatmaps, _ = cam.grad_cam(model, _patch_images(corners, size=size, patch=64), class_index=0)
    for heatmap, (top, left) in zip(heatmaps, corners):
        y, x = np.unravel_index(np.argmax(heatmap), heatmap.shape)
        assert (y < size // 2) == top and (x < size // 2) == left, (top, left, y, x)


def test_map_of_a_classifier_that_reads_one_region_is_zero_elsewhere():
    import keras

    backbone = kg.GoogLeNet(variant="bn", include_top=False, input_shape=(160, 160, 3))  # 5 x 5 maps
    mask = np.zeros((1, 5, 5, 1), "float32")
    mask[0, 3:, :2] = 1.0  # bottom-left 2 x 2 cells
    region = keras.layers.Lambda(lambda a: a * mask, name="region")(backbone.output)
    logits = keras.layers.Dense(2, name="loss3_classifier")(keras.layers.GlobalAveragePooling2D()(region))
    model = _positive_classifier(keras.Model(backbone.input, keras.layers.Activation("softmax", name="main")(logits)))
    images = np.random.default_rng(2).uniform(-1, 1, (2, 160, 160, 3)).astype("float32")
    heatmaps, _ = cam.grad_cam(model, images, class_index=1, layer="region")
    # Bilinear upsampling blends between cell centres (32 px apart): compare
    # from the centre of the region's cells inwards and beyond the next centres.
    inside = heatmaps[:, 112:, :48]
    assert inside.min() > 0
    assert heatmaps[:, :80, :].max() == 0.0 and heatmaps[:, :, 80:].max() == 0.0


def test_a_class_the_model_cannot_see_gives_a_flat_map():
    model = _positive_classifier(kg.GoogLeNet(variant="bn", input_shape=(SIZE, SIZE, 3), classes=3, aux_heads=False), zero_class=2)
    images = np.random.default_rng(3).uniform(-1, 1, (2, SIZE, SIZE, 3)).astype("float32")
    blind, _ = cam.grad_cam(model, images, class_index=2)
    seen, _ = cam.grad_cam(model, images, class_index=0)
    assert np.all(blind == 0.0)
    assert seen.max() == pytest.approx(1.0)  # the same images do raise a class the model sees


@pytest.mark.parametrize("variant, size", [("paper", 96), ("bn", 113)])
def test_maps_have_the_image_size_values_in_unit_range_and_the_top_classes(variant, size):
    model = kg.GoogLeNet(variant=variant, input_shape=(size, size, 3), classes=5)
    images = np.random.default_rng(4).uniform(-1, 1, (3, size, size, 3)).astype("float32")
    heatmaps, classes = cam.grad_cam(model, images, batch_size=2)
    assert heatmaps.shape == (3, size, size) and heatmaps.dtype == np.float32
    assert heatmaps.min() >= 0.0 and heatmaps.max() <= 1.0
    np.testing.assert_array_equal(classes, np.argmax(model.predict(images, verbose=0)[0], axis=-1))


@pytest.mark.parametrize("head, layer", [("aux1", "inception_4a_output"), ("aux2", "inception_4d_output")])
def test_auxiliary_heads_look_at_their_own_blocks(head, layer):
    assert cam.default_layer(head) == layer
    model = _positive_classifier(kg.GoogLeNet(variant="paper", input_shape=(SIZE, SIZE, 3), classes=3), head=head)
    heatmaps, classes = cam.grad_cam(model, _patch_images([(False, False)]), head=head, class_index=[1])
    y, x = np.unravel_index(np.argmax(heatmaps[0]), heatmaps[0].shape)
    assert y >= SIZE // 2 and x >= SIZE // 2 and classes.tolist() == [1]


def test_map_is_computed_through_a_preprocessing_layer_on_raw_pixels():
    model = _positive_classifier(kg.GoogLeNet(variant="bn", input_shape=(SIZE, SIZE, 3), classes=3, aux_heads=False, include_preprocessing=True))
    heatmaps, _ = cam.grad_cam(model, _patch_images([(True, False)]) * 255.0 + 127.5 * 0, class_index=0)
    assert heatmaps.shape == (1, SIZE, SIZE) and heatmaps.max() == pytest.approx(1.0)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"head": "aux3"}, r"Received: head='aux3'"),
        ({"layer": "nope"}, r"no layer 'nope'"),
        ({"layer": "inception_5b_3x3"}, r"does not read layer 'inception_5b_3x3' alone"),
        ({"class_index": 3}, r"Received: class_index=3"),
        ({"class_index": [0]}, r"one per image"),
    ],
)
def test_bad_arguments_fail_with_one_line_naming_them(kwargs, message):
    model = kg.GoogLeNet(variant="bn", input_shape=(SIZE, SIZE, 3), classes=3)
    with pytest.raises(ValueError, match=message):
        cam.grad_cam(model, np.zeros((2, SIZE, SIZE, 3)), **kwargs)


def test_images_of_the_wrong_size_are_refused():
    model = kg.GoogLeNet(variant="bn", input_shape=(SIZE, SIZE, 3), classes=3, aux_heads=False)
    with pytest.raises(ValueError, match=r"Received: images.shape=\(1, 64, 64, 3\)"):
        cam.grad_cam(model, np.zeros((1, 64, 64, 3)))


def _maps_on(backend, folder):
    """A lane job: random "paper" weights, images and their Grad-CAM maps per head, computed on ``backend``."""
    script = textwrap.dedent(
        f"""
        import numpy as np, keras, keras_googlenet as kg
        from keras_googlenet.inference import cam
        assert keras.backend.backend() == {backend!r}
        keras.utils.set_random_seed(5)
        model = kg.GoogLeNet(variant="paper", input_shape=({SIZE}, {SIZE}, 3), classes=3)
        model.save_weights("w.weights.h5")
        x = np.random.default_rng(5).uniform(-1, 1, (2, {SIZE}, {SIZE}, 3)).astype("float32")
        np.save("x.npy", x)
        np.savez("maps.npz", **{{h: cam.grad_cam(model, x, class_index=1, head=h)[0] for h in cam.HEADS}})
        """
    )
    return [(lane.python("-c", script), {"KERAS_BACKEND": backend, "JAX_PLATFORMS": "cpu"})]


MAPS_ON = {backend: functools.partial(_maps_on, backend) for backend in ("jax", "torch")}


@pytest.mark.slow
@pytest.mark.parametrize(
    "backend",
    [pytest.param("jax", marks=lane.reads(MAPS_ON["jax"])), pytest.param("torch", marks=[needs_torch, lane.reads(MAPS_ON["torch"])])],
)
def test_jax_and_torch_give_the_maps_tensorflow_gives(backend, lane_result):
    folder = lane_result(MAPS_ON[backend])
    model = kg.GoogLeNet(variant="paper", input_shape=(SIZE, SIZE, 3), classes=3)
    model.load_weights(folder / "w.weights.h5")
    images, got = np.load(folder / "x.npy"), np.load(folder / "maps.npz")
    for head in cam.HEADS:
        expected = cam.grad_cam(model, images, class_index=1, head=head)[0]
        np.testing.assert_allclose(got[head], expected, atol=2e-3)


@pytest.fixture(scope="module")
def cam_checkpoint(tmp_path_factory):
    import keras

    keras.utils.set_random_seed(0)
    model = _positive_classifier(kg.GoogLeNet(variant="bn", input_shape=(SIZE, SIZE, 3), classes=3), zero_class=2)
    path = tmp_path_factory.mktemp("cam") / "best.keras"
    model.save(path)
    (path.parent / "labels.txt").write_text("circle\nsquare\nnothing\n")
    return path


@pytest.mark.slow  # Grad-CAM pictures of a saved checkpoint: outside the quick tier's scope
def test_cam_pictures_are_written_per_image_and_differ_between_classes(cam_checkpoint, photo_paths, tmp_path):
    from PIL import Image

    from keras_googlenet.inference import cam_images

    photos = photo_paths[:2]
    first = cam_images.write_cam_images(cam_checkpoint, photos, tmp_path / "c0", top=2, class_index=0)
    second = cam_images.write_cam_images(cam_checkpoint, photos, tmp_path / "c1", top=2, class_index=1)
    blind = cam_images.write_cam_images(cam_checkpoint, photos[:1], tmp_path / "c2", top=2, class_index=2)
    assert [pathlib.Path(p).name for p in first] == [f"{p.name}.cam.png" for p in photos]
    a, b = (np.asarray(Image.open(p[0]).convert("RGB"), dtype=int) for p in (first, second))
    panel = 3 * SIZE  # 96 px drawn 3x: at least 256 px per panel
    assert a.shape[0] > panel + 3 * 18 and a.shape[1] > 2 * panel
    overlays = (a[:panel, -panel:], b[:panel, -panel:])
    assert np.abs(overlays[0] - overlays[1]).mean() > 1.0  # the heatmaps differ, not just the caption
    np.testing.assert_array_equal(a[:panel, :panel], b[:panel, :panel])  # the same crop beside them
    flat = np.asarray(Image.open(blind[0]).convert("RGB"), dtype=int)[:panel, -panel:]
    assert flat.reshape(-1, 3).std(axis=0).max() > 0  # the photo shows through the flat map


@pytest.mark.slow  # Grad-CAM pictures of a saved checkpoint: outside the quick tier's scope
def test_cam_picture_shows_the_crop_predict_classified_and_the_scores_predict_prints(cam_checkpoint, photo_paths, tmp_path, monkeypatch):
    import keras
    from PIL import Image

    from keras_googlenet.inference import cam_images, predict
    from keras_googlenet.data import images
    from keras_googlenet.artifacts import model_info

    photo = next(path for path in photo_paths if path.name == "parrot.jpg")  # 512 x 929: far from square
    pixels = images.load_image(photo)
    assert pixels.shape[:2] == (929, 512)
    loads = []
    real_load = keras.saving.load_model
    monkeypatch.setattr(keras.saving, "load_model", lambda *args, **kwargs: loads.append(args) or real_load(*args, **kwargs))
    (written,) = cam_images.write_cam_images(cam_checkpoint, [photo], tmp_path, top=3)
    assert len(loads) == 1  # the checkpoint is read once

    # The left panel, one pixel per 3x3 square, is the crop `predict` classifies.
    picture = np.asarray(Image.open(written).convert("RGB"))
    classified = images.crop_images([photo], SIZE)[0]
    np.testing.assert_array_equal(picture[: 3 * SIZE : 3, : 3 * SIZE : 3], np.clip(np.round(classified), 0, 255).astype(np.uint8))

    # The caption's scores, from that crop's one forward pass, are predict's to 4 decimals.
    model = model_info.load_keras_file(cam_checkpoint)
    info = model_info.checkpoint_info(kg.inference_model(model), checkpoint=cam_checkpoint)
    ((crop, heatmap, lines),) = cam_images.cam_pictures(model, info, [pixels], top=3)
    (expected,) = predict.predict(cam_checkpoint, [photo], top=3)
    assert lines[1:] == [f"{score:8.4f}  {name}" for name, score in expected]
    assert heatmap.shape == (SIZE, SIZE) and crop.shape == (SIZE, SIZE, 3)


def test_cam_refuses_exported_models_with_a_clear_reason(tmp_path):
    from keras_googlenet.inference import cam_images

    with pytest.raises(ValueError, match=r"have none\. Received: model='m.tflite'"):
        cam_images.write_cam_images("m.tflite", [], tmp_path)


@pytest.mark.slow  # Grad-CAM pictures of a saved checkpoint: outside the quick tier's scope
def test_predict_command_with_cam_writes_a_picture_per_photo(cam_checkpoint, photo_paths, tmp_path, capsys):
    from keras_googlenet import cli

    photos = [str(p) for p in photo_paths[:2]]
    assert cli.main(["predict", str(cam_checkpoint), *photos, "--top-k", "2", "--cam", str(tmp_path / "cams")]) == 0
    out = capsys.readouterr().out
    assert "Grad-CAM pictures: 2 in" in out
    assert sorted(p.name for p in (tmp_path / "cams").iterdir()) == sorted(f"{pathlib.Path(p).name}.cam.png" for p in photos)
