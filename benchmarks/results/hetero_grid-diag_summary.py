"""Summary of a hetero_grid-diag_*.jsonl file (branch grid24): python benchmarks/results/hetero_grid-diag_summary.py FILE."""
import json,sys,numpy as np
rows=[json.loads(l) for l in open(sys.argv[1]) if l.startswith('{')]
print(len(rows),'livers')
for est in ('tile-ncchi','tile-mixture'):
    e=np.array([r[est]['err_lic_pct'] for r in rows]); er=np.array([r[est]['err_r2_pct'] for r in rows])
    cov=sum(r[est]['covered'] for r in rows)
    h=np.array([r[est]['half_lic_pct'] for r in rows]); hr=np.array([r[est]['half_r2_pct'] for r in rows])
    sm=np.array([r[est]['se_meas_pct'] for r in rows]); sb=np.array([r[est]['se_boot_pct'] for r in rows]); ss=np.array([r[est]['se_spread_pct'] for r in rows])
    tfb=np.array([r[est]['tile_fit_bias_pct'] for r in rows]); corr=np.array([r[est]['correction_pct'] for r in rows])
    rho=np.array([list(r[est]['rho'].values())[0] if r[est]['rho'] else np.nan for r in rows])
    print(f"{est}: LIC err {e.mean():+.2f} +- {e.std(ddof=1)/np.sqrt(e.size):.2f} (SD {e.std(ddof=1):.2f}); R2 err {er.mean():+.2f} (SD {er.std(ddof=1):.2f}); covered {cov}/{len(rows)}; "
          f"median half LIC {np.median(h):.2f} R2 {np.median(hr):.2f} -> implied R2 SD {np.median(hr)/1.96:.2f}; se_meas {np.median(sm):.2f} se_boot {np.median(sb):.2f} se_spread {np.median(ss):.2f}; "
          f"tile_fit_bias {tfb.mean():.2f} (SD {tfb.std(ddof=1):.2f}); corr {corr.mean():.3f} (SD {corr.std(ddof=1):.3f}); rho {np.nanmean(rho):.5f} (SD {np.nanstd(rho,ddof=1):.5f})")
    if est=='tile-mixture':
        miss=[(r['seed'],round(r[est]['err_lic_pct'],2),round(r[est]['half_lic_pct'],2)) for r in rows if not r[est]['covered']]
        print(' misses',miss)
e1=np.array([r['tile-mixture']['err_r2_pct']-r['tile-ncchi']['err_r2_pct'] for r in rows]); print(f'mixture - ncchi R2 per liver: mean {e1.mean():.3f} SD {e1.std(ddof=1):.3f}')
