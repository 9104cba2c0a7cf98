"""Stages: each runs one side of a certification (models + checks) and returns a typed result."""
