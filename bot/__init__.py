"""A 24/7 AI auto-responder for brands' social-media customer service."""

import os

# Set before anything loads torch (its GNU OpenMP reads the environment once, when loaded). By default torch's
# threads spin 300,000 times waiting for their next task: beside the worker's event loop on a 2-core machine
# they burn the core the loop needs. 10,000 keeps their hand-offs fast without that: bench/pipeline.py's worker
# went from ~9 to ~7.6 ms of CPU a message and from 158-163 to 166-173 messages a second (BENCHMARKS.md). An
# operator's own value wins.
os.environ.setdefault("GOMP_SPINCOUNT", "10000")

# Set before anything loads numpy, for the same reason: its OpenBLAS spreads a matrix product of a few rows or
# more (the intent model's vote for a worker's batch of 16 against the brand's examples) over every core, and
# its helper thread then busy-waits for the next one, a whole core for as long as the worker pauses. One thread:
# bench/pipeline.py's worker from 9.0-10.3 to 7.2-7.3 ms of CPU a message offline, and 17 to 12 with a model
# (BENCHMARKS.md). An operator's own value wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
