"""Helpers shared by the tests (waiting on jobs, the odd-image catalogue, trained homes): one copy each."""
