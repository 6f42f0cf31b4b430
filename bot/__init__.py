"""A 24/7 AI auto-responder for brands' social-media customer service."""

import os

# Set before anything loads torch (its GNU OpenMP reads the environment once, when loaded). By default torch's
# threads spin 300,000 times waiting for their next task: beside the worker's event loop on a 2-core machine
# they burn the core the loop needs. 10,000 keeps their hand-offs fast without that: bench/pipeline.py's worker
# went from ~9 to ~7.6 ms of CPU a message and from 158-163 to 166-173 messages a second (BENCHMARKS.md). An
# operator's own value wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")
