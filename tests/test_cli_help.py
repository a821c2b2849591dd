"""Every ``r2mri`` help text reads as printed: no literal ``%%`` left by argparse."""

from __future__ import annotations

import pytest

from r2mri.cli import COMMANDS, build_parser


@pytest.mark.parametrize("command", COMMANDS)
def test_help_has_no_escaped_percent(command, capsys):
    parser = build_parser([command])
    with pytest.raises(SystemExit) as exc:
        parser.parse_args([command, "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.strip(), command
    assert "%%" not in out, f"r2mri {command} --help shows a literal '%%'"


def test_top_level_help_names_both_sequences(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "spin-echo" in out and "gradient-echo" in out


def test_phantom_without_output_says_why_in_one_line(capsys):
    """``-o`` is optional in the usage line (``--list`` needs none); its help and the error say so."""
    from r2mri.cli import main

    assert main(["phantom", "ferriscan-1.5t"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["r2mri: error: -o/--output: an output folder is required (only --list runs without one)"]
    with pytest.raises(SystemExit):
        build_parser(["phantom"]).parse_args(["phantom", "--help"])
    assert "required unless --list" in " ".join(capsys.readouterr().out.split())


def test_fit_series_takes_numbers_and_lists_like_load_and_analyze(capsys):
    """``r2mri fit --series`` said 'UID' only and passed '1,2' as one series; load and analyze split it."""
    from r2mri.commands.fit import series_list

    args = build_parser(["fit"]).parse_args(["fit", "IN", "-o", "OUT", "--series", "1,2", "--series", "3"])
    assert series_list(args.series) == ["1", "2", "3"]
    assert series_list(None) is None
    with pytest.raises(SystemExit):
        build_parser(["fit"]).parse_args(["fit", "--help"])
    assert "by series number or SeriesInstanceUID" in " ".join(capsys.readouterr().out.split())
