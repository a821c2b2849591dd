"""NIfTI maps: BIDS-style names, units in the sidecars, values equal to the maps."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))
from _report_fake import fake_result  # noqa: E402

from r2mri.report import write_outputs  # noqa: E402


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    res = fake_result()
    out = tmp_path_factory.mktemp("nii") / "out"
    write_outputs(res, out)
    return res, out


@pytest.mark.parametrize(
    "name, unit",
    [("R2map", "1/s"), ("T2map", "s"), ("S0map", "arbitrary"), ("desc-R2std_R2map", "1/s"),
     ("desc-LIC_map", "mg/g"), ("desc-liver_mask", ""), ("desc-fitstatus_dseg", "")],
)
def test_maps_and_sidecars(out, name, unit):
    res, folder = out
    img = nib.load(folder / f"{name}.nii.gz")
    np.testing.assert_allclose(img.affine, res.image.affine)
    side = json.loads((folder / f"{name}.json").read_text())
    assert side.get("Units", "") == unit
    data = np.asarray(img.dataobj)
    expected = {
        "R2map": res.fit.r2_per_s,
        "T2map": 1.0 / res.fit.r2_per_s,
        "S0map": res.fit.s0,
        "desc-R2std_R2map": res.fit.r2_std_per_s,
        "desc-LIC_map": res.lic_mg_per_g,
        "desc-liver_mask": res.roi.mask.astype(np.uint8),
        "desc-fitstatus_dseg": res.fit.status,
    }[name]
    np.testing.assert_allclose(data, expected, rtol=1e-6, equal_nan=True)


def test_settings_json_holds_the_run(out):
    res, folder = out
    s = json.loads((folder / "settings.json").read_text())
    assert s["options"] == res.settings["options"]
    assert s["r2mri_version"]
    assert "how_to_rerun" in s


def test_array_mask_is_saved_for_settings(tmp_path):
    res = fake_result()
    res.input_mask = res.roi.mask.copy()
    res.settings = {"inputs": [], "options": {"mask": "<array>", "model": "auto"}}
    write_outputs(res, tmp_path / "o")
    s = json.loads((tmp_path / "o" / "settings.json").read_text())
    assert s["options"]["mask"] == "desc-inputmask_mask.nii.gz"
    saved = np.asarray(nib.load(tmp_path / "o" / s["options"]["mask"]).dataobj).astype(bool)
    np.testing.assert_array_equal(saved, res.input_mask)
    assert "inputs_note" in s


def test_write_outputs_leaves_the_callers_garbage_collector_as_it_was(tmp_path):
    """write_outputs neither freezes nor unfreezes: a caller's own frozen objects stay
    frozen, and nothing is frozen for a caller that froze nothing."""
    import gc

    frozen_before = gc.get_freeze_count()
    gc.unfreeze()
    try:
        write_outputs(fake_result(), tmp_path / "a")
        assert gc.get_freeze_count() == 0
        keep = [[] for _ in range(10)]  # tracked by the collector
        gc.freeze()
        frozen = gc.get_freeze_count()
        write_outputs(fake_result(), tmp_path / "b")
        # nothing frozen on top (the count only drops, as frozen objects are freed), and
        # the caller's objects still frozen (gc.get_objects lists the collected generations)
        assert 0 < gc.get_freeze_count() <= frozen
        ids = {id(o) for o in keep}
        assert not any(id(o) in ids for o in gc.get_objects())
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        if frozen_before:
            gc.freeze()
