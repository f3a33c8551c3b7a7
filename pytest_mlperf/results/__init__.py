"""Reading LoadGen output, building result records, and writing them safely."""
