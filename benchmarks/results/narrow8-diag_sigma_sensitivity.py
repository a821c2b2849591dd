"""Diagnosis (branch narrow8): how far the tile-mixture headline moves per 1 % error in sigma.

Uniform 30 mg/g small liver (64 x 64 x 3 of 6 mm), SNR 50, 8 channels, seeds 0-2: voxel fit and
liver_statistics with sigma x 0.99 / 1 / 1.01. Output (2026-12-03 11:18 UTC, load 2.0):
0 [-1.161, -0.036, +1.103] dR2 % per 1 % sigma: 1.132
1 [+0.435, +1.567, +2.705] 1.135
2 [-0.624, +0.495, +1.621] 1.123
Run: NUMBA_NUM_THREADS=1 python benchmarks/results/narrow8-diag_sigma_sensitivity.py
"""
import numpy as np, r2mri
from types import SimpleNamespace
from r2mri.phantom import generate
from r2mri.stats import liver_statistics
G=dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
for seed in (0,1,2):
    ph=generate(lic=30.0,snr=50.0,coils=8,seed=seed,texture_seed=seed,lic_log_sd=0.0,lic_correlation_voxels=1.0,**G)
    mask=ph.truth.liver_mask; s0=float(ph.summary["noise_sigma"]); te=np.asarray(ph.image.echo_times_s,float)
    y=np.asarray(ph.image.data)[mask].astype(float); tr=float(ph.summary["mean_liver_r2_per_s"])
    out=[]
    for k in (0.99,1.0,1.01):
        s=s0*k
        f=r2mri.fit(y.reshape(-1,1,1,te.size),echo_times_s=te,model="ncchi",noise_sigma=s,coils=8,threads=1)
        m=np.full(mask.shape,np.nan); m[mask]=np.asarray(f.r2_per_s,float).reshape(-1)
        fit=SimpleNamespace(r2_per_s=m,status=np.zeros(mask.shape,np.uint8),options={"noise_sigma":s,"coils":8})
        st=liver_statistics(fit,mask,image=ph.image,estimator="tile-mixture",n_bootstrap=200,seed=seed)
        out.append(100*(st.headline_r2_per_s/tr-1))
    print(seed, ["%+.3f"%v for v in out], "dR2%% per 1%% sigma: %.3f"%((out[2]-out[0])/2))
