"""A first look at the network: layers, parameters per head, one prediction."""

from keras_googlenet.data import augment, images
from keras_googlenet.model import imagenet_utils, googlenet as model_lib
from keras_googlenet.model.task import inference_model


def print_summary(variant=None, weights=None, image=None, input_size=224, print_fn=print):
    """Builds GoogLeNet and prints its summary, parameter counts and a prediction."""
    net = model_lib.GoogLeNet(weights=weights, variant=variant, input_shape=(input_size, input_size, 3))
    variant = model_lib.model_variant(net)
    net.summary(print_fn=print_fn, line_length=110)

    counts = model_lib.head_parameter_counts(net)
    print_fn("Parameters per part:")
    for part, count in counts.items():
        print_fn(f"  {part:<9} {count:>12,}")
    print_fn(f"  {'total':<9} {net.count_params():>12,}")

    path = image or images.sample_photo("owl.jpg")
    pixels = augment.eval_transform(images.load_image(path), input_size).numpy()
    batch = imagenet_utils.preprocess_input(pixels[None], variant=variant)
    probabilities = inference_model(net).predict(batch, verbose=0)
    source = "pretrained" if weights else "random, untrained"
    print_fn(f"Top-5 for {path} ({source} weights, variant {variant!r}):")
    for wnid, name, score in imagenet_utils.decode_predictions(probabilities, top=5)[0]:
        print_fn(f"  {score:8.4f}  {wnid}  {name}")
    return probabilities

