"""Image transforms for training and testing, as in Sections 6 and 7 of the paper.

Every transform takes an RGB image (uint8 or float in [0, 255]) and returns
float32 in [0, 255]; scaling for a variant (`preprocess_input`) comes after.
They are TensorFlow ops, so they run inside `tf.data` and on a single image.
"""

import tensorflow as tf

# Section 6: "patches of the image whose size is distributed evenly between 8%
# and 100% of the image area and whose aspect ratio is chosen randomly between
# 3/4 and 4/3".
CROP_AREA_RANGE = (0.08, 1.0)
CROP_ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
# Section 6: "random interpolation methods (bilinear, area, nearest neighbor
# and cubic, with equal probability) for resizing".
INTERPOLATIONS = ("bilinear", "area", "nearest", "bicubic")
# Andrew Howard's photometric distortions, with TF-slim's inception_preprocessing
# strengths (the paper gives none).
MAX_BRIGHTNESS_DELTA = 32 / 255
CONTRAST_RANGE = (0.5, 1.5)
SATURATION_RANGE = (0.5, 1.5)
MAX_HUE_DELTA = 0.2

# Testing (Sections 7 and 10-crop practice): the crop is 224 of a 256 shorter side.
RESIZE_RATIO = 256 / 224
# Section 7: "resize the image to 4 scales where the shorter dimension (height
# or width) is 256, 288, 320 and 352 respectively".
MULTI_CROP_SCALES = (256, 288, 320, 352)
MULTI_CROP_SCHEMES = ("10crop", "144crop")


def sample_crop_box(image_shape, seed, area_range=CROP_AREA_RANGE, aspect_ratio_range=CROP_ASPECT_RATIO_RANGE):
    """Samples the paper's random crop box for an image of a given shape.

    When no box satisfying both ranges is found in 100 tries (a very
    elongated image), the whole image is used, as in TF-slim.

    Args:
        image_shape: ``(height, width, channels)``, a tensor or a sequence.
        seed: a stateless seed, shape ``(2,)`` integers.
        area_range: the range of the crop's area, as a fraction of the image's.
        aspect_ratio_range: the range of the crop's width / height.

    Returns:
        ``(offset_height, offset_width, height, width)``, int32 scalars.
    """
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        image_size=tf.cast(image_shape, tf.int32),
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        seed=seed,
        # 0 so that the area range alone bounds the crop: the default (0.1)
        # would forbid the paper's 8% crops.
        min_object_covered=0.0,
        aspect_ratio_range=aspect_ratio_range,
        area_range=area_range,
        max_attempts=100,
        use_image_if_no_bounding_boxes=True,
    )
    return begin[0], begin[1], size[0], size[1]


def train_transform(image, size, seed=None, area_range=CROP_AREA_RANGE):
    """The paper's training augmentation (Section 6) of one image.

    A random crop of 8%-100% of the area with aspect ratio 3/4-4/3, resized
    to ``size`` x ``size`` with a randomly chosen interpolation, a random
    horizontal flip, then brightness, contrast, saturation and hue
    distortions in a random order.

    Args:
        image: an RGB image, shape ``(height, width, 3)``, in [0, 255].
        size: the output height and width.
        seed: a stateless seed (an int or shape ``(2,)`` integers) for a
            deterministic result; random when ``None``.
        area_range: the range of the crop's area, as a fraction of the
            image's; the paper's (0.08, 1.0) by default.

    Returns:
        A float32 tensor of shape ``(size, size, 3)`` in [0, 255].
    """
    _check_size(size)
    image = _as_float_image(image, ranks=(3,))
    if seed is None:
        seed = tf.random.uniform([2], maxval=tf.int32.max, dtype=tf.int32)
    seed = tf.cast(seed, tf.int64)
    if seed.shape.rank == 0:
        seed = tf.stack([seed, tf.constant(0, tf.int64)])
    crop_seed, interpolation_seed, flip_seed, order_seed, *color_seeds = tf.unstack(
        tf.random.experimental.stateless_split(seed, num=8)
    )

    top, left, height, width = sample_crop_box(tf.shape(image), crop_seed, area_range=area_range)
    image = tf.slice(image, [top, left, 0], [height, width, 3])

    method = tf.random.stateless_uniform([], interpolation_seed, maxval=len(INTERPOLATIONS), dtype=tf.int32)
    image = tf.switch_case(method, [lambda name=name: _resize(image, size, name) for name in INTERPOLATIONS])
    # Bicubic overshoots; the colour ops below expect [0, 1].
    image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
    image = tf.image.stateless_random_flip_left_right(image, flip_seed)

    distortions = [
        lambda x, s: tf.image.stateless_random_brightness(x, MAX_BRIGHTNESS_DELTA, s),
        lambda x, s: tf.image.stateless_random_contrast(x, *CONTRAST_RANGE, s),
        lambda x, s: tf.image.stateless_random_saturation(x, *SATURATION_RANGE, s),
        lambda x, s: tf.image.stateless_random_hue(x, MAX_HUE_DELTA, s),
    ]
    order = tf.argsort(tf.random.stateless_uniform([len(distortions)], order_seed))
    for step, step_seed in enumerate(color_seeds):
        branches = [lambda distort=distort, x=image, s=step_seed: distort(x, s) for distort in distortions]
        image = tf.clip_by_value(tf.switch_case(order[step], branches), 0.0, 1.0)
    image = tf.ensure_shape(image * 255.0, [size, size, 3])
    return image


def eval_transform(image, size):
    """The testing view: the shorter side resized to size * 256 / 224, the centre crop.

    Works on one image or a batch, eagerly or inside `tf.data`.

    Args:
        image: RGB, shape ``(height, width, 3)`` or ``(batch, height, width, 3)``,
            in [0, 255].
        size: the output height and width (224 takes the 224 centre of 256).

    Returns:
        A float32 tensor of shape ``(..., size, size, 3)`` in [0, 255].
    """
    _check_size(size)
    image = resize_shorter_side(_as_float_image(image), round(size * RESIZE_RATIO))
    return _crop(image, *_centre_offsets(image, size), size)


def multi_crop(image, size, scheme="10crop"):
    """The crops of multi-crop testing, to average the predictions over.

    - ``"10crop"``: the shorter side resized to size * 256 / 224; the 4
      corner and the centre crops, then the mirror of each in the same order.
    - ``"144crop"`` (Section 7): the shorter side resized to 256, 288, 320
      and 352 (times size / 224); the left, centre and right squares (top,
      centre, bottom for portrait images); from each square the 4 corner and
      the centre crops and the square resized to ``size``, then their mirrors:
      4 x 3 x 6 x 2 = 144, ordered scale, square, crop (6), mirrors (6).

    Args:
        image: one RGB image, shape ``(height, width, 3)``, in [0, 255].
        size: the crop height and width.
        scheme: ``"10crop"`` or ``"144crop"``.

    Returns:
        A float32 tensor of shape ``(10 or 144, size, size, 3)`` in [0, 255].
    """
    _check_size(size)
    if scheme not in MULTI_CROP_SCHEMES:
        raise ValueError(f"`scheme` must be one of {MULTI_CROP_SCHEMES}. Received: scheme={scheme!r}")
    image = _as_float_image(image, ranks=(3,))
    if scheme == "10crop":
        crops = _five_crops(resize_shorter_side(image, round(size * RESIZE_RATIO)), size)
        return tf.concat([crops, tf.reverse(crops, axis=[2])], axis=0)
    views = []
    for scale in MULTI_CROP_SCALES:
        resized = resize_shorter_side(image, round(scale * size / 224))
        for square in _three_squares(resized):
            crops = tf.concat(
                [_five_crops(square, size), _resize(square, size, "bilinear", antialias=True)[None]], axis=0
            )
            views += [crops, tf.reverse(crops, axis=[2])]
    return tf.concat(views, axis=0)


def resize_shorter_side(image, target):
    """Resizes so that the shorter side is ``target``, keeping the aspect ratio.

    Bilinear with antialiasing, like PIL's and torchvision's resize.
    """
    shape = tf.shape(image)
    height, width = tf.cast(shape[-3], tf.float64), tf.cast(shape[-2], tf.float64)
    scale = target / tf.minimum(height, width)
    new_height = tf.maximum(target, tf.cast(tf.round(height * scale), tf.int32))
    new_width = tf.maximum(target, tf.cast(tf.round(width * scale), tf.int32))
    return _resize(image, [new_height, new_width], "bilinear", antialias=True)


def _resize(image, size, method, antialias=False):
    size = [size, size] if isinstance(size, int) else size
    return tf.image.resize(image, size, method=method, antialias=antialias)


def _crop(image, top, left, size):
    crop = image[..., top : top + size, left : left + size, :]
    # The offsets are tensors, so slicing loses the static shape Keras wants.
    if image.shape.rank is None:
        return crop
    return tf.ensure_shape(crop, image.shape[:-3].concatenate([size, size, image.shape[-1]]))


def _centre_offsets(image, size):
    shape = tf.shape(image)
    return (shape[-3] - size) // 2, (shape[-2] - size) // 2


def _five_crops(image, size):
    """Top-left, top-right, bottom-left, bottom-right and centre, stacked."""
    shape = tf.shape(image)
    bottom, right = shape[0] - size, shape[1] - size
    offsets = [(0, 0), (0, right), (bottom, 0), (bottom, right), _centre_offsets(image, size)]
    return tf.stack([_crop(image, top, left, size) for top, left in offsets])


def _three_squares(image):
    """The left, centre and right squares (top, centre, bottom if portrait)."""
    shape = tf.shape(image)
    side = tf.minimum(shape[0], shape[1])
    extra_rows, extra_columns = shape[0] - side, shape[1] - side
    return [
        image[top : top + side, left : left + side]
        for top, left in ((0, 0), (extra_rows // 2, extra_columns // 2), (extra_rows, extra_columns))
    ]


def _as_float_image(image, ranks=(3, 4)):
    image = tf.convert_to_tensor(image)
    if image.shape.rank not in (None, *ranks) or image.shape[-1] not in (None, 3):
        shapes = " or ".join(("(height, width, 3)", "(batch, height, width, 3)")[rank - 3] for rank in ranks)
        raise ValueError(f"Images must be RGB, shaped {shapes}. Received: image.shape={image.shape}")
    return tf.cast(image, tf.float32)


def _check_size(size):
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"`size` must be a positive int. Received: size={size!r}")
