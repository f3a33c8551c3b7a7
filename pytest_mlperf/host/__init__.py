"""GPU host facts (probe), requirement verdicts (checks) and provisioning (plan)."""
