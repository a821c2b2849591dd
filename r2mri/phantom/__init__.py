"""Digital liver phantoms with exact ground truth.

``generate`` builds a phantom in memory (anatomy, LIC map, R2 through the
published forward calibration, signal, coils and noise); ``write`` saves it as
NIfTI or DICOM with its truth maps and ``truth.json``. Named definitions live in
``phantoms/*.toml`` (:func:`list_specs`). See docs/phantoms.md.

Examples
--------
>>> from r2mri.phantom import generate
>>> ph = generate("ferriscan-1.5t-lic7", matrix=(32, 32), pixel_mm=12.0, n_slices=2)
>>> ph.image.sequence, ph.image.echo_train_length
('SE', 1)
"""

from __future__ import annotations

from ._anatomy import LABELS
from ._generate import Phantom, Truth, generate
from ._spec import PhantomSpec, list_specs
from ._writers import FORMATS, write

__all__ = ["generate", "write", "Phantom", "PhantomSpec", "Truth", "list_specs", "LABELS", "FORMATS"]
