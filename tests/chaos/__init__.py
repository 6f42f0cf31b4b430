"""Chaos tests: workers, Redis, the model and a platform fail while messages flow; every message still ends with
exactly one reply or one review case (marker `chaos`)."""
