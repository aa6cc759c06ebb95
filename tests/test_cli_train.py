"""The CLI's train and evaluate commands: documented options and one-line errors."""

import argparse
import re

import pytest

from keras_googlenet import cli


def _subparser(name):
    parser = cli.build_parser()
    subparsers = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    return subparsers.choices[name]


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_help_documents_every_option(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    actions = [a for a in _subparser(command)._actions if not isinstance(a, argparse._HelpAction)]
    assert len(actions) >= (20 if command == "train" else 7)
    for action in actions:
        assert action.help and len(action.help) > 10, action.dest
        for option in action.option_strings:
            assert option in text, option


def test_train_options_reach_the_library_unchanged():
    args = cli.build_parser().parse_args(
        ["train", "--epochs", "3", "--schedule", "cosine", "--ema", "--no-aux-heads", "--validation-split", "none", "--devices", "2"]
    )
    assert (args.epochs, args.schedule, args.use_ema, args.aux_heads, args.validation_split, args.devices) == (
        3, "cosine", True, False, "none", 2,
    )


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--epochs", "0"], "Received: --epochs=0"),
        (["train", "--image-size", "64"], "Received: --image-size=64"),
        (["train", "--learning-rate", "0"], "Received: --learning-rate=0.0"),
        (["evaluate", "/no/such/model.keras"], "The checkpoint file does not exist. Received: CHECKPOINT='/no/such/model.keras'"),
        (["evaluate", "model.h5"], "must be a `.keras` file. Received: CHECKPOINT='model.h5'"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.h5").touch()  # exists: the extension is what is wrong
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"keras-googlenet {argv[0]}: error:") and message in err and "\n" not in err
    assert not (tmp_path / "runs").exists()


def test_evaluate_prints_top1_and_top5_of_a_checkpoint(digits_checkpoint, capsys):
    assert cli.main(["evaluate", str(digits_checkpoint), "--limit", "8", "--crops", "10"]) == 0
    out = capsys.readouterr().out
    assert re.search(r"\(8 images, 10 crop\(s\) each\): top-1 (0|1)\.\d{4}, top-5 (0|1)\.\d{4}$", out.strip())
