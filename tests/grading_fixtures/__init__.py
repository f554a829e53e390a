"""Simulated student submissions for the grading tests and the autograde benchmark."""
