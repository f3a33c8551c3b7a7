# Stand-in for configs/bert/Offline/__init__.py (tests only): its registrations are in
# tests/standin/python3.sh; a test edits this file to change what shapes an engine.
