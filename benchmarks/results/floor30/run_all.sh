#!/bin/sh
# the 16 saved livers (main ecfa1f4's fits) with one experiment switch: run_all.sh NAME PATCH OUTDIR
cd /work/wt-floor30
for i in $(seq 1 16); do
  PYTHONPATH=/work/wt-floor30 PATCH="$2" NUMBA_NUM_THREADS=1 .venv/bin/python benchmarks/results/floor30/run_c30.py \
    --conditions 20x8 --textures $i --noise-seeds $((29+i)) --load-fits /work/fits/c30x8 --out $3/$1_t$i.json > $3/$1_t$i.log 2>&1
done
