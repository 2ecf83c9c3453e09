"""GDSS graph generation (generic graphs: community-small, ego-small, grid, ENZYMES)."""
