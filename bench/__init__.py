"""Benchmarks: figures printed and written to var/bench/, never asserted (`make bench`)."""
