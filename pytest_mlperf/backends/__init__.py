"""Backends run one benchmark×scenario×mode and leave LoadGen logs; they never judge."""
