"""The runtime: runner, group membership, task activation, node executor, error policy, status."""
