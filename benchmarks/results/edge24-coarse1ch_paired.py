"""Branch edge24: the floor-pocket join on the coarse 30 mg/g liver at SNR 20, one channel
(textures 1-4, noise seed 0), paired in one process as edge24-organs_paired.py. Run from the
repository root: NUMBA_NUM_THREADS=1 python benchmarks/results/edge24-coarse1ch_paired.py
"""
import sys

import r2mri
from r2mri.phantom import generate

sys.path.insert(0, "benchmarks/results")
pair = __import__("edge24-organs_paired").pair

for t in (1, 2, 3, 4):
    ph = generate("heterogeneous-coarse-1.5t", seed=0, texture_seed=t, lic_mg_per_g=30.0, snr=20, coils=1)
    pair(f"coarse 30 mg/g SNR 20 x1 texture {t} seed 0", ph, r2mri.analyze(ph.image, threads=1))
