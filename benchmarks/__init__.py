"""r2mri benchmarks: speed, scaling, end-to-end time and accuracy, measured and stored.

Run from the repository root::

    python -m benchmarks            # full mode, writes benchmarks/results/*.json and *.png
    python -m benchmarks --quick    # smoke run (< 60 s) into a scratch folder

Every number in ``benchmarks/README.md`` comes from ``benchmarks/results/*.json``
written by this package; the JSON records the machine, the versions and the date.
"""
