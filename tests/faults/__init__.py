"""Tests that replay the cases of issue 12 (one module per part of the fix)."""
