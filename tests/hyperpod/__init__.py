"""Tests of the HyperPod lifecycle scripts and their parameters generator."""
