"""Tests for r1chat."""
