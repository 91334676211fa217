"""Hybrid, explainable product recommendations from purchase history and stated needs."""
