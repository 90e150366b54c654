"""Comparing activations the way the paper does: a study runner, result tables and plots."""
