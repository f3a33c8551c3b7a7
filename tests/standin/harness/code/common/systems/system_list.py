# stand-in: the built-in systems are in tests/standin/python3.sh
