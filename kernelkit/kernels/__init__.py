"""Kernels shipped with kernelkit, built only on its public API."""
