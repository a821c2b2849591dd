"""Diagnosis (branch narrow8): headline sensitivity to sigma across cells, and sigma SE of estimate_noise.

Uniform small livers (64 x 64 x 3 of 6 mm), seed 0, tile-mixture, sigma x 0.99 / 1.01; then estimate_noise
on the default full-size geometry. Output (2026-12-03 11:22 UTC, load 2.3):
30 mg/g SNR 50 1 ch: dR2 % per 1 % sigma 0.170; sigma SE 0.264 %
30 mg/g SNR 20 8 ch: dR2 % per 1 % sigma 5.625; sigma SE 0.094 %
7 mg/g SNR 50 8 ch: dR2 % per 1 % sigma 0.133; sigma SE 0.094 %
7 mg/g SNR 50 1 ch: dR2 % per 1 % sigma 0.002; sigma SE 0.264 %
1 mg/g SNR 50 8 ch: dR2 % per 1 % sigma 0.023; sigma SE 0.094 %
full-size default geometry (256, 256, 11, 5) sigma SE 0.012 %, n_voxels 416420
Run: NUMBA_NUM_THREADS=1 python benchmarks/results/narrow8-diag_sigma_sensitivity_cells.py
"""
import numpy as np, r2mri, sys
from types import SimpleNamespace
from r2mri.phantom import generate
from r2mri.stats import liver_statistics
from r2mri.noise import estimate_noise
G=dict(matrix=(64, 64), pixel_mm=6.0, n_slices=3)
for lic,snr,coils in ((30,50,1),(30,20,8),(7,50,8),(7,50,1),(1,50,8)):
    ph=generate(lic=float(lic),snr=float(snr),coils=coils,seed=0,texture_seed=0,lic_log_sd=0.0,lic_correlation_voxels=1.0,**G)
    mask=ph.truth.liver_mask; s0=float(ph.summary["noise_sigma"]); te=np.asarray(ph.image.echo_times_s,float)
    y=np.asarray(ph.image.data)[mask].astype(float); tr=float(ph.summary["mean_liver_r2_per_s"])
    out=[]
    for k in (0.99,1.01):
        s=s0*k
        f=r2mri.fit(y.reshape(-1,1,1,te.size),echo_times_s=te,model="ncchi",noise_sigma=s,coils=coils,threads=1)
        m=np.full(mask.shape,np.nan); m[mask]=np.asarray(f.r2_per_s,float).reshape(-1)
        fit=SimpleNamespace(r2_per_s=m,status=np.zeros(mask.shape,np.uint8),options={"noise_sigma":s,"coils":coils})
        st=liver_statistics(fit,mask,image=ph.image,estimator="tile-mixture",n_bootstrap=200,seed=0)
        out.append(100*(st.headline_r2_per_s/tr-1))
    ne=estimate_noise(ph.image)
    print(f"{lic} mg/g SNR {snr} {coils} ch: dR2 % per 1 % sigma {(out[1]-out[0])/2:.3f}; sigma SE {100*ne.sigma_se/s0:.3f} %", flush=True)
ph=generate(lic=30.0,snr=50.0,coils=8,seed=0)
ne=estimate_noise(ph.image); print("full-size default geometry", ph.image.data.shape, f"sigma SE {100*ne.sigma_se/float(ph.summary['noise_sigma']):.3f} %, n_voxels {ne.n_voxels}")
