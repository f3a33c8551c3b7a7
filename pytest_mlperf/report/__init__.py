"""Rendering result records: terminal table, JUnit properties, pytest-html extras."""
