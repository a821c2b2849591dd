"""Bit-identity check for refactors: a fixed set of outputs, hashed, before and after.

    python -m benchmarks.split_golden MANIFEST.json            # run every case, write hashes
    python -m benchmarks.split_golden --compare A.json B.json  # list what differs

Each case runs in this one process (``r2mri.cli.main`` with stdout captured) in a fixed
work folder, so the paths written into the outputs are the same from run to run; the
report's clock is fixed (``created_utc`` is printed on the report page). The package's
path is in report.json (the calibration file), so compare runs of trees at one path
(copy each tree to the same folder and put it first on ``PYTHONPATH``). What is hashed,
per file:

- ``report.json`` and other JSON: the document without the keys that change run to run
  (``created_utc``, ``timings_s``, ``model.options.threads``; docs/report.md,
  "Reproducibility"), every float as written;
- NIfTI: the header bytes and the data array's bytes (not the gzip stream);
- DICOM: every element but dates, times and UIDs that a run generates (VR DA/TM/DT/UI
  outside the phantom writers, which derive their UIDs from the spec), sequences walked,
  the pixel data as bytes;
- PNG: the decoded pixels; PDF: skipped (creation dates); CSV: the rows without the
  ``seconds`` column; anything else: the bytes;
- the stdout of each command, with the timing lines' numbers replaced.

Plus the arrays of a few in-memory phantoms and of ``r2mri.fit`` for every model on a
small noisy volume (all output maps, status codes), hashed as bytes.

The cases (small matrices so the whole set runs in about a minute on one core): the demo
(``r2mri demo -o``, ``--gre -o``), a FerriScan DICOM phantom at 15 mg/g analysed and fitted
with each of the 7 decay models, a heterogeneous Enhanced MR phantom analysed, a GRE
fat-water Enhanced MR phantom with phase analysed and fitted with ``--model fatwater``,
a multi-echo DICOM GRE phantom analysed, NIfTI per-echo input analysed, and a batch run
over two exams.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import sys
from pathlib import Path

import numpy as np

WORK = Path("/tmp/r2mri-split-golden-work")
_RUN_KEYS = ("created_utc", "timings_s", "model.options.threads")
#: wall-clock fields of other documents (batch.json, cohort.json / .csv: seconds per exam)
_VOLATILE = ("created_utc", "timings_s", "seconds")


def _h(*parts: bytes) -> str:
    d = hashlib.sha256()
    for p in parts:
        d.update(p)
    return d.hexdigest()[:20]


def _json_hash(path: Path) -> str:
    doc = json.loads(path.read_text(encoding="utf-8"))
    if isinstance(doc, dict):
        for key in _RUN_KEYS:
            *parents, leaf = key.split(".")
            d = doc
            for p in parents:
                d = d.get(p, {}) if isinstance(d, dict) else {}
            if isinstance(d, dict):
                d.pop(leaf, None)
        _drop_volatile(doc)
    return _h(json.dumps(doc, indent=1).encode())


def _drop_volatile(doc) -> None:
    """Wall-clock fields anywhere in a document (settings.json, cohort.json)."""
    if isinstance(doc, dict):
        for k in list(doc):
            if k in _VOLATILE:
                del doc[k]
            else:
                _drop_volatile(doc[k])
    elif isinstance(doc, list):
        for v in doc:
            _drop_volatile(v)


def _nifti_hash(path: Path) -> str:
    import nibabel as nib
    img = nib.load(str(path))
    return _h(img.header.binaryblock, np.asanyarray(img.dataobj).tobytes())


def _dicom_items(ds, keep_uids: bool):
    for elem in ds:
        if elem.VR == "SQ":
            yield str(elem.tag).encode()
            for item in elem.value:
                yield from _dicom_items(item, keep_uids)
        elif elem.tag == 0x7FE00010:
            yield bytes(elem.value)
        elif elem.VR in ("DA", "TM", "DT") or (elem.VR == "UI" and not keep_uids):
            continue
        else:
            yield str(elem.tag).encode() + repr(elem.value).encode()


def _dicom_hash(path: Path, keep_uids: bool) -> str:
    import pydicom
    ds = pydicom.dcmread(str(path), force=True)
    return _h(*_dicom_items(ds, keep_uids))


def _png_hash(path: Path) -> str:
    import matplotlib.image as mpimg
    return _h(np.ascontiguousarray(mpimg.imread(str(path))).tobytes())


def _file_hash(path: Path, keep_uids: bool) -> str | None:
    name = path.name
    if name.endswith(".json"):
        return _json_hash(path)
    if name.endswith((".nii", ".nii.gz")):
        return _nifti_hash(path)
    if name.endswith(".png"):
        return _png_hash(path)
    if name.endswith(".pdf") or name.endswith(".lock"):
        return None
    if name.endswith(".csv"):
        return _csv_hash(path)
    if name.endswith(".dcm") or _is_dicom(path):
        return _dicom_hash(path, keep_uids)
    return _h(path.read_bytes())


def _csv_hash(path: Path) -> str:
    import csv
    rows = list(csv.DictReader(path.open(encoding="utf-8", newline="")))
    return _h(json.dumps([{k: v for k, v in r.items() if k not in _VOLATILE} for r in rows]).encode())


class _FixedClock:
    """Stands in for the ``datetime`` module in r2mri.report._json: the report's
    ``created_utc`` (printed on the page, report.png and its Secondary Capture) fixed."""

    import datetime as _real

    timezone = _real.timezone

    class datetime(_real.datetime):
        @classmethod
        def now(cls, tz=None):
            return cls(2000, 1, 1, 0, 0, 0, tzinfo=tz)


def _fix_clock() -> None:
    from r2mri.report import _json
    _json._dt = _FixedClock


def _is_dicom(path: Path) -> bool:
    with open(path, "rb") as fh:
        head = fh.read(132)
    return len(head) == 132 and head[128:132] == b"DICM"


def _tree(root: Path, keep_uids: bool, into: dict, prefix: str) -> None:
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        h = _file_hash(path, keep_uids)
        if h is not None:
            into[f"{prefix}/{path.relative_to(root)}"] = h


_TIMING = re.compile(r"\d+(\.\d+)?\s*(s|ms|seconds)\b")


def _cli(argv: list[str], into: dict, key: str) -> None:
    from r2mri.cli import main
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        try:
            rc = main(argv)
        except SystemExit as e:  # argparse and the commands' own exits
            rc = e.code
    text = "\n".join(_TIMING.sub("<t>", line) if ("time" in line.lower() or "took" in line.lower()
                                                  or " in " in line) else line
                     for line in buf.getvalue().splitlines())
    into[f"stdout/{key}"] = _h(f"rc={rc}\n{text}".encode())


def _array_parts(obj, name: str, depth: int = 0):
    """Every ndarray reachable from ``obj`` (attributes, dict values), with its path."""
    if isinstance(obj, np.ndarray):
        yield name.encode() + str(obj.dtype).encode() + np.ascontiguousarray(obj).tobytes()
    elif isinstance(obj, dict):
        for k in sorted(obj, key=str):
            yield from _array_parts(obj[k], f"{name}.{k}", depth + 1)
    elif depth < 3 and hasattr(obj, "__dict__") and not isinstance(obj, type):
        for k in sorted(vars(obj)):
            yield from _array_parts(getattr(obj, k), f"{name}.{k}", depth + 1)


def _arrays_hash(obj) -> str:
    return _h(*_array_parts(obj, ""))


SMALL = dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
MODELS = ("loglinear", "monoexp", "monoexp_offset", "biexp", "ncchi", "truncated", "auto")


def _phantoms(into: dict) -> dict[str, Path]:
    from r2mri import phantom as P
    made = {}
    plan = [  # (key, spec, overrides, format, write options)
        ("fs15_dicom", "ferriscan-1.5t-lic15", dict(SMALL), "dicom", {}),
        ("fs3_rescale", "ferriscan-1.5t-lic3.2", dict(SMALL, coils=4), "dicom",
         dict(per_series_rescale=True, shuffle_files=True)),
        ("focal_enh", "heterogeneous-focal-1.5t", dict(SMALL), "dicom-enhanced", {}),
        ("gre_fat_enh", "gre-1.5t-fat15-lic3.2", dict(SMALL), "dicom-enhanced", dict(phase=True)),
        ("gre_fat_me", "gre-1.5t-fat40-lic7-12echo", dict(SMALL), "dicom-multiecho", dict(phase=True)),
        ("fs40_nifti", "ferriscan-1.5t-lic40", dict(SMALL, snr=20.0), "nifti-per-echo", {}),
        ("het_nifti", "heterogeneous-coarse-1.5t", dict(SMALL), "nifti", {}),
        ("gre3t_enh", "gre-3t-fat15-lic3.2", dict(SMALL), "dicom-enhanced", {}),
        ("cpmg_me", "cpmg-1.5t-lic3.2", dict(SMALL), "dicom-multiecho", {}),
    ]
    for key, spec, over, fmt, opts in plan:
        ph = P.generate(spec, seed=3, **over)
        into[f"phantom/{key}/arrays"] = _arrays_hash(ph)
        into[f"phantom/{key}/summary"] = _h(json.dumps(ph.summary, sort_keys=True, default=str).encode())
        out = P.write(ph, WORK / "ph" / key, format=fmt, **opts)
        _tree(out, True, into, f"phantom/{key}")
        made[key] = out
    for key, over in (("texture", dict(SMALL, lic_cv=0.3)), ("zero_bg", dict(SMALL, zero_background=True)),
                      ("snr_inf", dict(SMALL, snr=float("inf")))):
        try:
            ph = P.generate("ferriscan-1.5t-lic7", seed=5, **over)
            into[f"phantom/{key}/arrays"] = _arrays_hash(ph)
        except (TypeError, ValueError) as e:
            into[f"phantom/{key}/error"] = _h(repr(e).encode())
    return made


def _input_of(out: Path) -> Path:
    for sub in ("dicom", "nifti"):
        if (out / sub).is_dir():
            return out / sub
    return out


#: options a case needs to run (the Enhanced MR writer declares a multi-echo train, so St Pierre refuses it)
ANALYZE_EXTRA = {"focal_enh": ("--calibration-file", "<cpmg>"), "cpmg_me": ("--calibration-file", "<cpmg>"),
                 "gre3t_enh": ("--calibration", "hernando-2022-r2star-3t-scaled")}


def _inputs_of(out: Path) -> list[str]:
    src = _input_of(out)
    if src.name == "nifti" or not (src / "dicom").exists() and list(src.glob("*.nii*")):
        return sorted(str(p) for p in src.glob("*.nii*") if "part-phase" not in p.name)
    return [str(src)]


def _fits_in_memory(into: dict) -> None:
    import r2mri
    from r2mri import phantom as P
    ph = P.generate("ferriscan-1.5t-lic15", seed=11, matrix=(48, 48), pixel_mm=8.0, n_slices=2, snr=25.0)
    for model in MODELS:
        res = r2mri.fit(ph.image, model=model, threads=1)
        into[f"fit_api/{model}/sigma_given"] = _arrays_hash(
            r2mri.fit(ph.image, model=model, threads=1, noise_sigma=float(ph.summary["noise_sigma"]), coils=1))
        into[f"fit_api/{model}"] = _arrays_hash(res)


def run_all() -> dict:
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    into: dict = {}
    _fix_clock()
    ph = _phantoms(into)
    _cli(["demo", "-o", str(WORK / "demo")], into, "demo")
    _tree(WORK / "demo", False, into, "demo")
    _cli(["demo", "--gre", "-o", str(WORK / "demo_gre")], into, "demo_gre")
    _tree(WORK / "demo_gre", False, into, "demo_gre")
    cpmg = WORK / "cpmg-site.toml"  # St Pierre's curve as a site file that accepts a CPMG train
    cpmg.write_text(re.sub(r'(?m)^echo_train = "single"', 'echo_train = "any"',
                           re.sub(r'(?m)^name = "st-pierre-2005"', 'name = "site-cpmg-test"',
                                  (Path(__file__).resolve().parents[1] / "calibration"
                                   / "st-pierre-2005.toml").read_text())))
    for key in ("fs15_dicom", "fs3_rescale", "focal_enh", "gre_fat_enh", "gre_fat_me", "fs40_nifti",
                "het_nifti", "gre3t_enh", "cpmg_me"):
        out = WORK / "analyze" / key
        _cli(["analyze", *_inputs_of(ph[key]), "-o", str(out), "--threads", "1",
              *(str(cpmg) if a == "<cpmg>" else a for a in ANALYZE_EXTRA.get(key, ()))],
             into, f"analyze/{key}")
        if out.exists():
            _tree(out, False, into, f"analyze/{key}")
    for model in MODELS:
        out = WORK / "fit" / model
        _cli(["fit", str(_input_of(ph["fs15_dicom"])), "-o", str(out), "--model", model, "--threads", "1",
              "--quiet"], into, f"fit/{model}")
        if out.exists():
            _tree(out, False, into, f"fit/{model}")
    out = WORK / "fit" / "fatwater"
    _cli(["fit", str(_input_of(ph["gre_fat_enh"])), "-o", str(out), "--model", "fatwater", "--threads", "1",
          "--quiet"], into, "fit/fatwater")
    if out.exists():
        _tree(out, False, into, "fit/fatwater")
    _fits_in_memory(into)
    tree = WORK / "cohort_in"
    for key in ("fs15_dicom", "focal_enh"):
        shutil.copytree(_input_of(ph[key]), tree / key)
    _cli(["batch", str(tree), "-o", str(WORK / "cohort"), "--jobs", "1"], into, "batch")
    _tree(WORK / "cohort", False, into, "batch")
    return into


def compare(a: dict, b: dict) -> int:
    keys = sorted(set(a) | set(b))
    bad = [k for k in keys if a.get(k) != b.get(k)]
    for k in bad:
        print(f"DIFFERS {k}: {a.get(k)} -> {b.get(k)}")
    print(f"{len(keys) - len(bad)}/{len(keys)} outputs identical")
    return 1 if bad else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--compare"]:
        return compare(json.loads(Path(argv[1]).read_text()), json.loads(Path(argv[2]).read_text()))
    os.environ.setdefault("NUMBA_NUM_THREADS", "1")
    manifest = run_all()
    Path(argv[0]).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(f"{len(manifest)} outputs hashed into {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
