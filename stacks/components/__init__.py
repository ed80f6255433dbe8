"""Constructs the stacks compose: one concept per module."""
