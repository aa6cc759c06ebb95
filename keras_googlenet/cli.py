"""The `keras-googlenet` command line: argument parsing over the library.

Each subcommand has one ``_add_<command>(subparsers)`` function that declares
its options and sets ``handler`` to a small function calling the library.
Library errors (ValueError, FileNotFoundError) become one line on stderr and
exit status 2; nothing else is caught.
"""

import argparse
import sys


def _add_summary(subparsers):
    parser = subparsers.add_parser(
        "summary",
        help="build a GoogLeNet, print its layers, per-head parameter counts and a prediction on a photo",
        description="Builds GoogLeNet, prints its summary, the parameter count of the backbone and of each "
        "head, and the top-5 ImageNet classes for a photo (a bundled one by default). Random weights "
        "unless --weights is given, so the classes are meaningless without it.",
    )
    parser.add_argument("--variant", default=None, choices=["paper", "bn"], help="network variant (default: paper, or bn with pretrained weights)")
    parser.add_argument("--weights", default=None, help="None, 'imagenet' or a .weights.h5 path (default: random)")
    parser.add_argument("--image", default=None, help="photo to classify (default: a bundled photo of an owl)")
    parser.add_argument("--input-size", type=int, default=224, help="input height and width in pixels (default: 224)")
    parser.set_defaults(handler=_summary)


def _summary(args):
    from keras_googlenet import summary

    summary.print_summary(variant=args.variant, weights=args.weights, image=args.image, input_size=args.input_size)


COMMANDS = (_add_summary,)


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-googlenet",
        description="GoogLeNet (Inception v1) for Keras 3: build, train, evaluate, export and predict.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add_command in COMMANDS:
        add_command(subparsers)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except (ValueError, FileNotFoundError) as error:
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        print(f"keras-googlenet {args.command}: error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
