"""benchmarks.coarse30 on the saved livers with experiment switches (PATCH="module:name=value;...")."""
import os, sys
for kv in filter(None, os.environ.get("PATCH", "").split(";")):
    mod, rest = kv.split(":"); name, val = rest.split("=")
    setattr(__import__(mod, fromlist=["x"]), name, eval(val))
from benchmarks.coarse30 import main
sys.exit(main(sys.argv[1:]))
