"""Interfaces of other tuning libraries over arqon, so code written for them runs with only its import changed."""

from arqon.compat.arqonhpo import ArqonSolver

__all__ = ["ArqonSolver"]
