"""Grading of the course's autograded assignments."""
