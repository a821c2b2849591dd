"""Band region growing of the liver ROI (seed, box and automatic candidates of :func:`r2mri.roi.liver_roi`).

Region growing runs on status-OK voxels with S0 above 5 % of the 99th percentile of S0
("tissue"), with the R2 and S0 maps 3x3 in-plane median filtered (:func:`_smooth`) and
taken in log. The region starts as 3x3 voxels around the seed and is then, until it
stops changing, the set of tissue voxels connected to it (6-connectivity in 3-D) whose
log R2 and high-passed log S0 (log S0 minus its 30 mm Gaussian tissue mean, which takes
out receive-coil shading) lie within ``grow_k`` (3) robust SDs of the region's medians
(at least 0.15 and 0.25, at most 0.3 and 0.4), and whose log S0 step to an in-plane
neighbour does not exceed max(0.2, median + 6 robust SDs of the region's steps) (organ
edges stop it). The rounds run in the numba kernel :func:`_grow_kernel` (``cache=True``);
:func:`_median3x3_inplane` is the 3x3 in-plane median of the maps. :func:`_box` gives
the bounding box an in-plane neighbourhood operation can run on with the same numbers.

Fat-water (GRE) fits: :func:`growth_status` lets voxels whose decay reached the noise
floor with a first echo clearly above it grow as status-OK voxels (a high-iron GRE liver
is mostly BELOW_NOISE; the rules and the statistics still see the fit's own status).

The seeds, the scoring of grown regions and the self-checks are in
:mod:`r2mri._roi_proposal`.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from ._numba_setup import njit

_MAD_TO_SD = 1.4826  # 1 / Phi^-1(3/4): MAD of a normal distribution times this is its SD
# Smallest half-widths of the growing band, in natural-log units [D]: 0.15 (R2 within
# about 16 %) and 0.25 (S0 within about 28 %, room for receive-coil shading); they only
# matter when the region's own robust SD is smaller than band / grow_k.
_BAND_FLOOR_R2 = 0.15
_BAND_FLOOR_S0 = 0.25
# Largest half-widths [D]: 0.3 (R2 within a factor 1.35) and 0.4 (S0 within a factor
# 1.5), so a region that has swallowed two tissues cannot widen its band to all of the
# body; the liver's own smoothed spread is below 0.1 in log R2 even at 40 mg/g, SNR 50.
_BAND_CAP_R2 = 0.3
_BAND_CAP_S0 = 0.4
# Scale of receive-coil shading removed from log S0 before growing (mm) [D]: larger than
# organ boundaries are sharp, smaller than the body; 30 mm.
_SHADING_MM = 30.0
# Smallest log-S0 step between in-plane neighbours that counts as an organ edge [D]:
# 0.2 (a 22 % jump); coil shading changes S0 by a few % per voxel, liver/muscle by ~50 %.
_EDGE_FLOOR = 0.2

_WHOLE = (slice(None), slice(None), slice(None))


#: Smallest face-connected region (3-D) of floor-decayed BELOW_NOISE voxels that
#: :func:`growth_status` lets grow, in ml [D: r2mri's own]: 50. Organ-sized: on the
#: ``gre-1.5t-fat15-lic3.2`` coarse texture (128 x 128 x 5 voxels of 3 mm, 0.0675 ml, SNR 20)
#: the liver's region was 265-460 ml at 15-30 mg/g, the largest other one (bone) 6 ml at
#: 5-30 mg/g; without the limit those bone and body-wall voxels changed the growth maps
#: at 5 mg/g and one run's ROI went to subcutaneous fat (docs/fatwater.md "High iron and the automatic ROI").
FLOOR_REGION_MIN_ML = 50.0


def growth_status(image, fit, status: np.ndarray, k: float, options: dict) -> np.ndarray:
    """The status map the band growing reads: for a fat-water fit (``fit.model ==
    "fatwater"``), BELOW_NOISE voxels whose decay reached the noise floor with a first
    echo clearly above it (:func:`r2mri._roi_iron.decayed_to_floor` with ``k``: the first
    echo's 3x3 mean ``k`` SEs of a mean of 9 above the floor's mean, the last echo's
    within ``k`` of it) read as OK where they form a face-connected region of at least
    :data:`FLOOR_REGION_MIN_ML`; every other voxel, and every voxel of other fits, keeps
    its status. Records the count in ``options["growth_floor_voxels"]`` (fat-water fits).

    Why: growing runs on status-OK voxels. At 30 mg/g on the 1.5 T 6-echo GRE train
    (TE1 1.2 ms, R2* ~1160 s^-1) 74-84 % of the liver is BELOW_NOISE (the fat-water run
    rule), the OK voxels left are a sieve that does not connect, and the automatic ROI
    grew in fat, muscle, soft tissue and spleen (headline -66 to -98 %; docs/fatwater.md
    "High iron and the automatic ROI"). Their first echo is tissue evidence, as for the
    spin-echo rim (:func:`r2mri._roi_iron.join_decayed_rim`); the band (log R2*, log S0,
    edge steps) still decides what joins, and their fitted R2* (median ~570 s^-1 on that
    liver) keeps them out of muscle, fat and spleen (30-70 s^-1). Air (no first echo),
    vessels and fluid (last echo above the floor) are not in the set; small regions
    (bone, the body wall's edge) stay out by the size limit. Spin-echo fits are unchanged
    (their liver grows from OK voxels; the rim joins afterwards).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> d = np.ones((40, 40, 1, 3)); d[..., 0] = 8.0
    >>> img = SimpleNamespace(data=d, voxel_size_mm=(10.0, 10.0, 10.0), metadata=None)  # 1 ml voxels
    >>> st = np.full((40, 40, 1), 3, np.uint8); st[0] = 0
    >>> fit = SimpleNamespace(model="fatwater", options={"noise_sigma": 1.0, "coils": 1})
    >>> int(growth_status(img, fit, st, 3.0, {}).max())   # 1560 ml at the floor: all grow
    0
    >>> int(growth_status(img, SimpleNamespace(model="ncchi"), st, 3.0, {}).max())   # spin echo: as fitted
    3
    """
    from ._roi_iron import decayed_to_floor
    from ._roi_proposal import _voxel_volume_ml
    from .status import FitStatus

    if getattr(fit, "model", None) != "fatwater":
        return status
    below = status == FitStatus.BELOW_NOISE
    decayed = decayed_to_floor(image, fit, _WHOLE, k) if below.any() else None
    if decayed is None:
        return status
    labels, n = ndimage.label(below & decayed, structure=ndimage.generate_binary_structure(3, 1))
    sizes_ml = np.bincount(labels.ravel(), minlength=n + 1) * _voxel_volume_ml(image)
    sizes_ml[0] = 0.0
    promote = (sizes_ml >= FLOOR_REGION_MIN_ML)[labels]
    options["growth_floor_voxels"] = int(np.count_nonzero(promote))
    return np.where(promote, np.asarray(FitStatus.OK, dtype=status.dtype), status)


def _box(mask: np.ndarray, margin: int = 1) -> tuple[slice, slice, slice]:
    """Bounding box of a non-empty ``mask``, grown by ``margin`` voxels in-plane (inside the grid).

    An in-plane neighbourhood operation of radius ``<= margin`` gives the same numbers
    on the voxels of ``mask`` whether it runs on the box or on the whole grid: all the
    voxels it reads are in the box, and at a box edge that is not a grid edge the
    box holds ``margin`` voxels outside ``mask``.
    """
    box = []
    for axis, grow in ((0, margin), (1, margin), (2, 0)):
        idx = np.flatnonzero(mask.any(axis=tuple(a for a in range(3) if a != axis)))
        box.append(slice(max(int(idx[0]) - grow, 0), min(int(idx[-1]) + 1 + grow, mask.shape[axis])))
    return tuple(box)  # type: ignore[return-value]


def _smooth(values: np.ndarray, valid: np.ndarray, box: tuple[slice, ...] = _WHOLE) -> np.ndarray:
    """3x3 in-plane median of ``values`` in ``box``; invalid voxels are filled with the valid median first.

    The fill value is the median over all valid voxels; the result (of the box's shape)
    equals the whole-grid filter on voxels one voxel inside the box or on a grid edge.
    """
    fill = float(np.median(values[valid])) if valid.any() else 0.0
    filled = np.where(valid[box], values[box], fill)
    if filled.ndim == 3 and filled.dtype == np.float64 and np.isfinite(filled).all():
        return _median3x3_inplane(filled)
    return ndimage.median_filter(filled, size=(3, 3, 1), mode="nearest")



@njit
def _median3x3_inplane(a):
    """``ndimage.median_filter(a, size=(3, 3, 1), mode="nearest")`` for a finite float64
    (x, y, z) array, exactly (a median picks one of the nine values), ~20x faster:
    the median-of-9 sorting network of Paeth (Graphics Gems, 1990) as given by
    Devillard ("Fast median search: an ANSI C implementation", 1998, ``opt_med9``),
    19 compare-exchanges per voxel instead of scipy's generic rank selection."""
    nx, ny, nz = a.shape
    out = np.empty_like(a)
    for k in range(nz):
        for i in range(nx):
            i0 = i - 1 if i > 0 else 0
            i2 = i + 1 if i < nx - 1 else nx - 1
            for j in range(ny):
                j0 = j - 1 if j > 0 else 0
                j2 = j + 1 if j < ny - 1 else ny - 1
                p0, p1, p2 = a[i0, j0, k], a[i0, j, k], a[i0, j2, k]
                p3, p4, p5 = a[i, j0, k], a[i, j, k], a[i, j2, k]
                p6, p7, p8 = a[i2, j0, k], a[i2, j, k], a[i2, j2, k]
                if p1 > p2:
                    p1, p2 = p2, p1
                if p4 > p5:
                    p4, p5 = p5, p4
                if p7 > p8:
                    p7, p8 = p8, p7
                if p0 > p1:
                    p0, p1 = p1, p0
                if p3 > p4:
                    p3, p4 = p4, p3
                if p6 > p7:
                    p6, p7 = p7, p6
                if p1 > p2:
                    p1, p2 = p2, p1
                if p4 > p5:
                    p4, p5 = p5, p4
                if p7 > p8:
                    p7, p8 = p8, p7
                if p0 > p3:
                    p0, p3 = p3, p0
                if p5 > p8:
                    p5, p8 = p8, p5
                if p4 > p7:
                    p4, p7 = p7, p4
                if p3 > p6:
                    p3, p6 = p6, p3
                if p1 > p4:
                    p1, p4 = p4, p1
                if p2 > p5:
                    p2, p5 = p5, p2
                if p4 > p7:
                    p4, p7 = p7, p4
                if p4 > p2:
                    p4, p2 = p2, p4
                if p6 > p4:
                    p6, p4 = p4, p6
                if p4 > p2:
                    p4, p2 = p2, p4
                out[i, j, k] = p4
    return out


def _robust(values: np.ndarray) -> tuple[float, float]:
    med = float(np.median(values))
    return med, _MAD_TO_SD * float(np.median(np.abs(values - med)))


def _inplane_steps(f: np.ndarray) -> np.ndarray:
    """Largest absolute difference of each voxel to its 4 in-plane neighbours."""
    step = np.zeros_like(f)
    for axis in (0, 1):
        d = np.abs(np.diff(f, axis=axis))
        lo = [slice(None)] * 3
        hi = [slice(None)] * 3
        lo[axis] = slice(0, -1)
        hi[axis] = slice(1, None)
        step[tuple(lo)] = np.maximum(step[tuple(lo)], d)
        step[tuple(hi)] = np.maximum(step[tuple(hi)], d)
    return step


def _grow(seed_region: np.ndarray, allowed_tissue: np.ndarray, logr: np.ndarray, logs: np.ndarray,
          k: float, steps: np.ndarray, max_iter: int = 100) -> np.ndarray:
    """Band region growing: iterate (robust band of the region) -> (connected component).

    Each round keeps the ``allowed_tissue`` voxels within the band of the region's
    medians (``logr``, ``logs``: ``min(max(k SD, floor), cap)``) whose in-plane step
    ``steps`` (of the smoothed log S0) is at most max(floor, median + 2 k SD of the
    region's steps), which bars growth across organ edges; the new region is every
    face-connected component of those voxels that the region touches. It stops when
    the region no longer changes, after ``max_iter`` rounds, or (keeping the region)
    when no component is touched.

    The rounds run in :func:`_grow_kernel` (numba): medians by selection and a flood
    fill instead of ``np.median`` and ``ndimage.label``, the same region to the voxel
    (tested against that reference); 0.18 -> 0.10 s for the five growths of a
    FerriScan phantom.
    """
    region = seed_region & allowed_tissue
    if not region.any():
        return region
    return _grow_kernel(
        np.ascontiguousarray(region), np.ascontiguousarray(allowed_tissue),
        np.ascontiguousarray(logr, dtype=np.float64), np.ascontiguousarray(logs, dtype=np.float64),
        np.ascontiguousarray(steps, dtype=np.float64), float(k), _EDGE_FLOOR, _BAND_FLOOR_R2, _BAND_CAP_R2,
        _BAND_FLOOR_S0, _BAND_CAP_S0, _MAD_TO_SD, int(max_iter),
    )


@njit
def _select(a, n, k):
    """The ``k``-th smallest of ``a[:n]`` (0-based), reordering ``a[:n]`` in place so that
    ``a[:k]`` holds values <= it: Hoare's quickselect with a median-of-three pivot
    (C. A. R. Hoare, "Algorithm 65: FIND", Commun. ACM 4(7), 1961). 0.66 ms for 80,000
    values, against 1 ms for numba's ``np.partition``."""
    lo = 0
    hi = n - 1
    while hi > lo:
        mid = (lo + hi) >> 1
        if a[mid] < a[lo]:
            a[mid], a[lo] = a[lo], a[mid]
        if a[hi] < a[lo]:
            a[hi], a[lo] = a[lo], a[hi]
        if a[hi] < a[mid]:
            a[hi], a[mid] = a[mid], a[hi]
        pivot = a[mid]
        i = lo
        j = hi
        while i <= j:
            while a[i] < pivot:
                i += 1
            while a[j] > pivot:
                j -= 1
            if i <= j:
                a[i], a[j] = a[j], a[i]
                i += 1
                j -= 1
        if k <= j:
            hi = j
        elif k >= i:
            lo = i
        else:
            break
    return a[k]


@njit
def _median_of(values, n):
    """Median of finite ``values[:n]`` (reordered in place), as ``np.median`` gives it:
    the middle value, or the mean of the two middle values for even ``n``."""
    h = n // 2
    hi = _select(values, n, h)
    if n % 2 == 1:
        return hi
    lo = values[0]  # the largest of the lower half is the other middle value
    for i in range(1, h):
        if values[i] > lo:
            lo = values[i]
    return (lo + hi) / 2.0


@njit
def _robust_kernel(values, n, scratch, mad_to_sd):
    """(median, MAD-based SD) of ``values[:n]`` (reordered), as :func:`_robust`."""
    med = _median_of(values, n)
    for i in range(n):
        scratch[i] = abs(values[i] - med)
    return med, mad_to_sd * _median_of(scratch, n)


@njit
def _grow_kernel(region, allowed, logr, logs, steps, k, edge_floor, floor_r2, cap_r2, floor_s0, cap_s0,
                 mad_to_sd, max_iter):
    """The rounds of :func:`_grow` on C-contiguous (x, y, z) arrays; returns the region."""
    nx, ny, nz = region.shape
    size = region.size
    reg = region.ravel().copy()
    alw = allowed.ravel()
    fr, fs, fst = logr.ravel(), logs.ravel(), steps.ravel()
    vr = np.empty(size)
    vs = np.empty(size)
    vst = np.empty(size)
    scratch = np.empty(size)
    ok = np.empty(size, dtype=np.bool_)
    new = np.empty(size, dtype=np.bool_)
    queue = np.empty(size, dtype=np.int64)
    sx, sy = ny * nz, nz
    for _ in range(max_iter):
        # [D] an int64 from the start: a literal 0 made numba compile _robust_kernel,
        # _median_of and _select twice, for Literal[int](0) and for int64 (~1 s of a
        # first run; issue 14)
        n = np.int64(0)
        for i in range(size):
            if reg[i]:
                vr[n] = fr[i]
                vs[n] = fs[i]
                vst[n] = fst[i]
                n += 1
        med, sd = _robust_kernel(vst, n, scratch, mad_to_sd)
        lim_st = max(edge_floor, med + 2 * k * sd)
        med_r, sd_r = _robust_kernel(vr, n, scratch, mad_to_sd)
        lim_r = min(max(k * sd_r, floor_r2), cap_r2)
        med_s, sd_s = _robust_kernel(vs, n, scratch, mad_to_sd)
        lim_s = min(max(k * sd_s, floor_s0), cap_s0)
        for i in range(size):
            ok[i] = alw[i] and fst[i] <= lim_st and abs(fr[i] - med_r) <= lim_r and abs(fs[i] - med_s) <= lim_s
        # flood fill of ok from the region's ok voxels (6-connectivity) = the
        # components of ok that the region touches
        head = 0
        tail = 0
        for i in range(size):
            new[i] = False
        for i in range(size):
            if reg[i] and ok[i]:
                new[i] = True
                queue[tail] = i
                tail += 1
        if tail == 0:
            break  # no component touched: the region stays
        while head < tail:
            i = queue[head]
            head += 1
            x = i // sx
            y = (i // sy) % ny
            z = i % nz
            # the six face neighbours inside the box, written out: a helper function for
            # the repeated queueing step (even inlined) made the kernel 2.5x slower
            for d in range(6):
                if d == 0:
                    if x == 0:
                        continue
                    j = i - sx
                elif d == 1:
                    if x == nx - 1:
                        continue
                    j = i + sx
                elif d == 2:
                    if y == 0:
                        continue
                    j = i - sy
                elif d == 3:
                    if y == ny - 1:
                        continue
                    j = i + sy
                elif d == 4:
                    if z == 0:
                        continue
                    j = i - 1
                else:
                    if z == nz - 1:
                        continue
                    j = i + 1
                if ok[j] and not new[j]:
                    new[j] = True
                    queue[tail] = j
                    tail += 1
        same = True
        for i in range(size):
            if new[i] != reg[i]:
                same = False
            reg[i] = new[i]
        if same:
            break
    return reg.reshape((nx, ny, nz))
