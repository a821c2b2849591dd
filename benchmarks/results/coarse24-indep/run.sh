cd /work/wt-c30
export NUMBA_NUM_THREADS=1
for i in 1 2 3 4 5 6 7 8; do
  n=$((i+9))
  .venv/bin/python -m benchmarks.coarse30 --conditions 20x8 --textures $i --noise-seeds $n --out /tmp/u24/c30/t${i}_n${n}.json > /tmp/u24/c30/t${i}_n${n}.log 2>&1
done
echo done > /tmp/u24/c30/DONE
