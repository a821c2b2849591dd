"""SeriesDescription of overridden phantoms: the actual parameters within 64 characters.

A ``--lic 30`` override of ``ferriscan-1.5t-lic7`` once wrote "uniform LIC 7 mg/g
[overridden: TE 6 ms" (cut at the LO limit) and the report page showed it.
"""

from __future__ import annotations

import pydicom
import pytest

from r2mri.phantom import generate, write
from r2mri.phantom._describe import LO_MAX_CHARS, fit_long_string
from r2mri.phantom._spec import list_specs, resolve_spec

SUFFIXES = (" TE 18 ms phase", " (multi-echo)", " (enhanced phase)", " TE 6 ms")


@pytest.mark.parametrize("base, overrides, expected", [
    ("ferriscan-1.5t-lic7", {"lic": 30}, ["LIC 30 mg/g"]),
    ("ferriscan-1.5t-lic7", {"lic": 30, "snr": 20, "coils": 8}, ["LIC 30 mg/g", "SNR 20", "8 coils"]),
    ("heterogeneous-focal-1.5t", {"snr": 12.5, "coils": 2}, ["SNR 12.5", "2 coils"]),
    ("heterogeneous-1.5t", {"lic_log_sd": 0.4, "lic_cv": 0.0, "focal": ()}, ["log-SD 0.4", "CV 0", "no focal"]),
    ("gre-1.5t-fat40-lic7-12echo", {"lic_mg_per_g": 2.5, "pdff_percent": 5.0}, ["LIC 2.5 mg/g", "PDFF 5 %"]),
])
def test_override_description_names_the_true_parameters_within_64(base, overrides, expected):
    sp = resolve_spec(base, overrides)
    assert "LIC 7 mg/g" not in sp.description and base in sp.description
    for suffix in SUFFIXES:
        desc = fit_long_string(sp.description, suffix)
        assert len(desc) <= LO_MAX_CHARS and desc.endswith(suffix) and "  " not in desc
        for text in expected:
            assert text in desc, (desc, text)


@pytest.mark.parametrize("name", list_specs())
def test_shipped_descriptions_cut_at_a_word_without_double_spaces(name):
    full = resolve_spec(name, {}).description
    for suffix in SUFFIXES:
        desc = fit_long_string(full, suffix)
        assert len(desc) <= LO_MAX_CHARS and "  " not in desc
        head = desc[:-len(suffix)]
        assert full.startswith(head) and (len(head) == len(full) or full[len(head)] in " ,([")


def test_dicom_series_keeps_the_override_and_the_full_text(tmp_path):
    ph = generate("ferriscan-1.5t-lic7", matrix=(24, 20), pixel_mm=16.0, n_slices=1, seed=1,
                  lic=30, snr=20, coils=8, echo_times_ms=[6.0, 9.0, 12.0, 15.0, 18.0, 21.0])
    out = write(ph, tmp_path / "d", format="dicom")
    for f in sorted(out.rglob("*.dcm")):
        ds = pydicom.dcmread(f, stop_before_pixels=True)
        assert len(ds.SeriesDescription) <= LO_MAX_CHARS
        assert ds.SeriesDescription.startswith("LIC 30 mg/g, SNR 20, 8 coils")
        assert ds.SeriesDescription.endswith(f" TE {float(ds.EchoTime):g} ms")
        assert ds.get("ImageComments", ds.SeriesDescription).startswith(ph.spec.description)
