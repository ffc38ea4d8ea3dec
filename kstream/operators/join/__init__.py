"""Joins of two inputs by key (DESIGN.md section 6; docs/joins.md)."""
