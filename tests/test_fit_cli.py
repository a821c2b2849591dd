"""``r2mri fit``: the command writes the maps and settings atomically; errors exit 2."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np

from r2mri import FitStatus
from r2mri.cli import main
from r2mri.commands.fit import synthetic_image


def test_fit_synthetic_writes_maps(tmp_path, capsys):
    out = tmp_path / "maps"
    assert main(["fit", "--synthetic", "-o", str(out), "--quiet", "--threads", "1"]) == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"R2map.nii.gz", "S0map.nii.gz", "R2std.nii.gz", "status.nii.gz", "settings.json"}
    r2 = np.asarray(nib.load(out / "R2map.nii.gz").dataobj)
    status = np.asarray(nib.load(out / "status.nii.gz").dataobj)
    assert r2.shape == (48, 48, 3) and status.dtype == np.uint8
    settings = json.loads((out / "settings.json").read_text())
    assert settings["fit"]["model"] == "ncchi" and settings["fit"]["model_requested"] == "auto"
    # the synthetic disc has R2 = 30..250 s^-1 left to right, SNR 50: the fitted rates in
    # the disc's converged voxels stay inside that range widened by 5 standard errors
    # (<= ~60 s^-1 at 250 s^-1, see test_fit_accuracy)
    ok = status == FitStatus.OK
    img = synthetic_image()
    inside = ok & (img.data[..., 0] > 200)
    assert inside.sum() > 1000
    assert 0 < np.percentile(r2[inside], 1) and np.percentile(r2[inside], 99) < 310
    assert "model ncchi" in capsys.readouterr().out


def test_fit_cli_errors(tmp_path, capsys):
    assert main(["fit", "-o", str(tmp_path / "x")]) == 2
    assert "INPUT" in capsys.readouterr().err
    out = tmp_path / "y"
    out.mkdir()
    assert main(["fit", "--synthetic", "-o", str(out), "--quiet"]) == 2
    assert "exists" in capsys.readouterr().err
    assert main(["fit", "--synthetic", "-o", str(tmp_path / "z"), "--model", "ncchi",
                 "--noise-sigma", "-3", "--quiet"]) == 2
    assert "noise_sigma" in capsys.readouterr().err
    assert not (tmp_path / "z").exists()
