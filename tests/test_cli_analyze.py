"""`r2mri analyze` and `r2mri demo` from the command line: outputs, and one-line errors (exit 2, no OUT)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from r2mri import phantom as P
from r2mri.cli import main

SMALL = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    base = tmp_path_factory.mktemp("cli")
    ph = P.generate(lic=7.0, seed=2, **SMALL)
    nifti = P.write(ph, base / "nifti", format="nifti")
    per_echo = P.write(ph, base / "per_echo", format="nifti-per-echo")
    labels = ph.truth.labels
    outline = (labels == P.LABELS["liver"]) | (labels == P.LABELS["vessel"])
    mask = base / "outline.nii.gz"
    nib.save(nib.Nifti1Image(outline.astype(np.uint8), ph.image.affine), mask)
    bad_mask = base / "bad_mask.nii.gz"
    nib.save(nib.Nifti1Image(np.ones((10, 10, 2), np.uint8), np.eye(4)), bad_mask)
    tiny = np.zeros(outline.shape, np.uint8)
    tiny[32, 32, 1] = 1
    tiny_mask = base / "tiny_mask.nii.gz"
    nib.save(nib.Nifti1Image(tiny, ph.image.affine), tiny_mask)
    bare = base / "bare"
    bare.mkdir()
    (bare / "img.nii.gz").write_bytes((nifti / "phantom_MESE.nii.gz").read_bytes())  # no JSON sidecar
    cpmg = P.write(P.generate("cpmg-1.5t-lic3.2", **SMALL), base / "cpmg", format="nifti")
    return {
        "base": base, "ph": ph, "nii": nifti / "phantom_MESE.nii.gz", "mask": mask, "bad_mask": bad_mask,
        "tiny_mask": tiny_mask, "bare": bare / "img.nii.gz", "cpmg": cpmg / "phantom_MESE.nii.gz",
        "echoes": sorted(per_echo.glob("*_echo-*_MESE.nii.gz")),
    }


@pytest.fixture(scope="module")
def good_run(files):
    out = files["base"] / "out"
    code = main(["analyze", str(files["nii"]), "--mask", str(files["mask"]), "-o", str(out)])
    return out, code


def test_analyze_writes_the_report(good_run, files):
    out, code = good_run
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    truth = files["ph"].summary["lic_of_mean_r2_mg_per_g"]
    assert abs(rep["lic_mg_per_g"]["of_mean_r2"] - truth) / truth < 0.03
    for name in ("report.pdf", "report.png", "R2map.nii.gz", "T2map.nii.gz", "S0map.nii.gz",
                 "desc-LIC_map.nii.gz", "desc-R2std_R2map.nii.gz", "desc-liver_mask.nii.gz", "settings.json"):
        assert (out / name).is_file(), name
    assert not (out / "dicom").exists()  # NIfTI input: DICOM off by default
    assert (out / "report.pdf").read_bytes()[:5] == b"%PDF-"
    roi = np.asarray(nib.load(out / "desc-liver_mask.nii.gz").dataobj).astype(bool)
    assert int(roi.sum()) == rep["roi"]["n_voxels"]
    lic = np.asarray(nib.load(out / "desc-LIC_map.nii.gz").dataobj)
    assert float(np.mean(lic[roi])) == pytest.approx(rep["lic_mg_per_g"]["mean"], rel=1e-5)


def test_analyze_prints_the_headline(files, tmp_path, capsys):
    code = main(["analyze", *map(str, files["echoes"]), "--mask", str(files["mask"]), "-o", str(tmp_path / "o"),
                 "--noise-sigma", "19.4", "--coils", "4", "--threads", "1"])
    assert code == 0
    out = capsys.readouterr().out
    rep = json.loads((tmp_path / "o" / "report.json").read_text())
    assert f"LIC {rep['lic_mg_per_g']['of_mean_r2']:.2f} mg Fe/g" in out
    assert rep["qc"]["noise_sigma"] == 19.4
    assert rep["qc"]["noise_method"] == "given"
    assert len(rep["input"]["files"]) == 5


def test_pdf_renders(good_run, tmp_path):
    """The PDF page rasterises (pdftoppm) to a non-blank A4 page."""
    from _tools import need_tool
    from PIL import Image

    need_tool("pdftoppm")
    out, _ = good_run
    subprocess.run(["pdftoppm", "-r", "40", "-png", "-singlefile", str(out / "report.pdf"), str(tmp_path / "p")],
                   check=True)
    img = np.asarray(Image.open(tmp_path / "p.png").convert("L"), dtype=float)
    assert img.shape[0] / img.shape[1] == pytest.approx(11.69 / 8.27, rel=0.02)
    assert img.std() > 20  # text, maps and plots drawn


def _fails(argv, capsys, out, pattern):
    code = main(argv + ["-o", str(out)])
    err = capsys.readouterr().err
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("r2mri: error: "), err
    assert pattern in lines[0], lines[0]
    assert not out.exists()
    assert not [p for p in out.parent.iterdir() if p.name.startswith("." + out.name)], "partial folder left"


def test_error_no_echo_times(files, tmp_path, capsys):
    _fails(["analyze", str(files["bare"])], capsys, tmp_path / "o", "echo time")


def test_error_mismatched_mask(files, tmp_path, capsys):
    _fails(["analyze", str(files["nii"]), "--mask", str(files["bad_mask"])], capsys, tmp_path / "o", "mask")


def test_error_empty_roi(files, tmp_path, capsys):
    _fails(["analyze", str(files["nii"]), "--mask", str(files["tiny_mask"])], capsys, tmp_path / "o", "ROI")


def test_error_protocol_without_force(files, tmp_path, capsys):
    two = [str(p) for p in files["echoes"][:2]]
    _fails(["analyze", *two, "--mask", str(files["mask"])], capsys, tmp_path / "o", "too-few-echoes")
    assert main(["analyze", *two, "--mask", str(files["mask"]), "--force", "-o", str(tmp_path / "forced")]) == 0
    rep = json.loads((tmp_path / "forced" / "report.json").read_text())
    assert rep["qc"]["forced"] is True


def test_error_st_pierre_at_3t(files, tmp_path, capsys):
    _fails(["analyze", str(files["nii"]), "--field-strength", "3"], capsys, tmp_path / "o", "3 T")


def test_error_st_pierre_on_cpmg(files, tmp_path, capsys):
    _fails(["analyze", str(files["cpmg"])], capsys, tmp_path / "o", "CPMG")


def test_error_dicom_from_nifti(files, tmp_path, capsys):
    _fails(["analyze", str(files["nii"]), "--mask", str(files["mask"]), "--dicom"], capsys, tmp_path / "o", "--dicom")


def test_existing_out_needs_overwrite(good_run, files, capsys):
    out, _ = good_run
    before = (out / "report.json").read_text()
    assert main(["analyze", str(files["nii"]), "-o", str(out)]) == 2
    assert "exists" in capsys.readouterr().err
    assert (out / "report.json").read_text() == before


def test_demo_fresh_process(tmp_path):
    """The README's main-job command, in a fresh interpreter, prints the headline against the truth."""
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.run([sys.executable, "-m", "r2mri", "demo", "-o", str(tmp_path / "demo")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "truth inside the 95 % CI" in proc.stdout
    rep = json.loads((tmp_path / "demo" / "report.json").read_text())
    head = rep["lic_mg_per_g"]["of_mean_r2"]
    line = [ln for ln in proc.stdout.splitlines() if "truth:" in ln][0]
    true_head = float(line.split("LIC of the mean liver R2 ")[1].split()[0])
    assert abs(head - true_head) / true_head < 0.03
    assert (tmp_path / "demo" / "report.pdf").is_file()


def test_demo_gre_runs_the_r2star_path(tmp_path, capsys):
    """`r2mri demo --gre`: the fat-water R2* path end to end on the 1.5 T GRE phantom with
    PDFF 15 %: headline within 3 % of truth (issue 15), PDFF within 1.5 points."""
    out = tmp_path / "demo"
    assert main(["demo", "--gre", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    rep = json.loads((out / "report.json").read_text())
    assert rep["quantity"] == "R2*" and rep["calibration"]["name"] == "hernando-2022-r2star-1.5t"
    line = [ln for ln in text.splitlines() if "truth: LIC" in ln][0]
    true_head = float(line.split("LIC of the mean liver R2* ")[1].split()[0])
    assert abs(rep["lic_mg_per_g"]["of_mean_r2"] - true_head) / true_head < 0.03
    assert abs(rep["pdff_percent"]["median"] - 15.0) < 1.5
    # the demo printed no warning at all; it now prints the report's, as `r2mri analyze` does
    assert rep["warnings"] and all(f"  warning: {w}" in text.splitlines() for w in rep["warnings"])
    pd = rep["pdff_percent"]  # the ROI PDFF of the tile-pooled fit (docs/fatwater.md "ROI PDFF ...")
    assert pd["mean_method"] == "tile-fw-ncchi" and abs(pd["mean"] - 15.0) < 1.5
    assert (out / "R2starmap.nii.gz").is_file() and (out / "desc-PDFF_map.nii.gz").is_file()


def test_pdf_text_carries_the_headline(good_run):
    """The page's text (pdftotext) shows the headline of report.json, its category and the disclaimer."""
    from _tools import need_tool

    need_tool("pdftotext")
    out, _ = good_run
    rep = json.loads((out / "report.json").read_text())
    text = subprocess.run(["pdftotext", "-layout", str(out / "report.pdf"), "-"], capture_output=True,
                          text=True, check=True).stdout
    assert f"LIC {rep['lic_mg_per_g']['of_mean_r2']:.2f} mg Fe/g dry weight" in text
    assert rep["category"]["label"].split(" (")[0] in text
    assert "Research use only" in text
    assert f"{rep['roi']['n_voxels']} / {rep['roi']['volume_ml']:.1f} ml" in text


def test_echo_times_given_on_the_command_line(files, tmp_path):
    """A NIfTI without sidecar analyses once --echo-times-ms supplies the TEs (after INPUT; commas or spaces)."""
    out = tmp_path / "o"
    assert main(["analyze", str(files["bare"]), "--echo-times-ms", "6", "9", "12", "15", "18",
                 "--mask", str(files["mask"]), "--field-strength", "1.5", "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["acquisition"]["echo_times_ms"] == [6.0, 9.0, 12.0, 15.0, 18.0]
    truth = files["ph"].summary["lic_of_mean_r2_mg_per_g"]
    assert abs(rep["lic_mg_per_g"]["of_mean_r2"] - truth) / truth < 0.03
    settings = json.loads((out / "settings.json").read_text())
    assert settings["options"]["echo_times_ms"] == [6.0, 9.0, 12.0, 15.0, 18.0]
    out2 = tmp_path / "o2"
    assert main(["analyze", str(files["bare"]), "--echo-times-ms", "6,9,12,15,18", "--mask", str(files["mask"]),
                 "-o", str(out2)]) == 0
    rep2 = json.loads((out2 / "report.json").read_text())
    assert rep2["lic_mg_per_g"]["of_mean_r2"] == rep["lic_mg_per_g"]["of_mean_r2"]


def test_analyze_with_a_seed_voxel_in_the_liver(files, capsys):
    """--roi-seed grows the ROI from a voxel the reader picked: the headline matches the truth."""
    ph = files["ph"]
    liver = ph.truth.liver_mask
    # a voxel deep inside the liver parenchyma: the liver voxel farthest from its edge
    from scipy import ndimage

    depth = ndimage.distance_transform_edt(liver)
    seed = np.unravel_index(int(np.argmax(depth)), liver.shape)
    out = files["base"] / "seeded"
    code = main(["analyze", str(files["nii"]), "-o", str(out), "--roi-seed", *map(str, seed), "--erode-mm", "6"])
    assert code == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["roi"]["method"] == "seed"
    settings = json.loads((out / "settings.json").read_text())
    assert settings["options"]["roi_options"]["erode_mm"] == 6.0
    truth = ph.summary["lic_of_mean_r2_mg_per_g"]
    # the headline of the seeded ROI must land where the reader-outline run lands: within
    # 3 % of truth (the bias limit at SNR 50 for this LIC)
    assert abs(rep["lic_mg_per_g"]["of_mean_r2"] - truth) / truth < 0.03
