"""Command line: unknown names and invalid numbers fail before training, with the fix."""

from __future__ import annotations

import pytest

from bench.__main__ import main


@pytest.mark.parametrize("argv, expected", [
    (["run", "--suite", "quik"], r"unknown suite 'quik'\. Did you mean 'quick'\?.*full, quick, smoke"),
    (["run", "--scenario", "mnist1d-subst"], r"unknown scenario 'mnist1d-subst'\. Did you mean 'mnist1d-subset'"),
    (["run", "--init", "xavire"], r"unknown initializer 'xavire'\. Did you mean 'xavier'\?.*uniform"),
    (["run", "--reference", "unifrom"], r"unknown reference initializer 'unifrom'"),
    (["run", "--d2-train-size", "50000", "--scenario", "digits-subset"], r"d2_train_size=50000 is invalid"),
    (["run", "--device", "tpu"], r"device='tpu' is invalid: use 'cpu' or 'cuda'"),
    (["report", "/nonexistent/run"], r"config.json is missing"),
    (["run", "--init-option", "phi_stepz=3"], r"unknown φ option\(s\) \['phi_stepz'\].*phi_steps"),
    (["run", "--init-option", "unseen_classes=zero"], r"unseen_classes='zero' is invalid"),
    (["run", "--init-option", "unseen_class_bias=abc"], r"unseen_class_bias='abc' is invalid"),
    (["run", "--init-option", "ligo_steps=-5"], r"ligo_steps=-5 is invalid: it must be an integer"),
    (["run", "--init-option", "ki_weight=nan"], r"ki_weight='nan' is invalid"),
    (["run", "--init-option", "ligo_stepz=5"], r"unknown initializer option 'ligo_stepz'\. Did you mean 'ligo_steps'"),
    (["run", "--seeds", "99999999999", "--dry-run"], r"num_seeds=99999999999 is invalid: at most 10000"),
    (["run", "--learning-rates", "1e-3,0.001", "--dry-run"], r"lists a rate twice"),
    (["run", "--device", "cuda:abc", "--dry-run"], r"device='cuda:abc' is invalid"),
])
def test_invalid_input_exits_with_message(argv, expected, capsys):
    """Check that bad names and values exit with status 2 and a message naming them."""
    assert main(argv) == 2
    assert __import__("re").search(expected, capsys.readouterr().err), capsys.readouterr()


@pytest.mark.parametrize("argv, expected", [
    (["run", "--seeds", "0"], "invalid value 0: it must be at least 1"),
    (["run", "--seeds", "many"], "invalid integer 'many'"),
    (["run", "--learning-rates", "0.1,-1"], "every value must be a positive finite number"),
    (["run", "--learning-rates", "inf"], "every value must be a positive finite number"),
    (["run", "--init", ","], "give one or more names"),
    (["run", "--steps", "-5"], "invalid value -5"),
    (["run", "--init-option", "phi_steps"], "invalid option 'phi_steps': write KEY=VALUE"),
])
def test_invalid_number_exits_nonzero(argv, expected, capsys):
    """Check that argparse rejects impossible numbers with the value in the message."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    assert expected in capsys.readouterr().err


def test_dry_run_lists_cells(capsys):
    """Check that --dry-run prints every planned cell and trains nothing."""
    assert main(["run", "--suite", "smoke", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "suite smoke: 3 cells, 4 seeds" in out
    for name in ("uniform", "xavier", "copy-exact"):
        assert f"mnist1d-subset / {name} / lr=0.001 / chunk 0" in out


def test_list_shows_registry(capsys):
    """Check that `list` shows initializers with teacher need, scenarios and suites."""
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "copy-exact" in out
    assert "yes" in out
    assert "digits-subset" in out
    assert "Suites: smoke, quick, full" in out


def test_resume_needs_out(capsys):
    """Check that --resume without --out explains what to pass."""
    assert main(["run", "--suite", "smoke", "--resume"]) == 2
    assert "--resume needs --out RUN_DIR" in capsys.readouterr().err


def test_init_option_reaches_config():
    """Check that --init-option values are parsed (numbers as numbers) into the config."""
    from bench.__main__ import build_parser, resolve_config

    args = build_parser().parse_args(["run", "--suite", "smoke", "--init-option", "phi_steps=7",
                                      "--init-option", "unseen_classes=default"])
    config = resolve_config(args)
    assert config.init_options["phi_steps"] == 7
    assert config.init_options["unseen_classes"] == "default"


def test_unwritable_out_is_reported(tmp_path, capsys):
    """Check that an --out below a regular file gives an error, not a traceback."""
    blocker = tmp_path / "afile"
    blocker.write_text("")
    argv = ["run", "--suite", "smoke", "--scenario", "digits-subset", "--out",
            str(blocker / "sub")]
    assert main(argv) == 2
    assert "cannot use" in capsys.readouterr().err


def test_damaged_config_is_reported(tmp_path, capsys):
    """Check that a damaged config.json is named with the way out."""
    (tmp_path / "config.json").write_text("{not json")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "config.json is damaged" in err
    assert "another --out" in err
