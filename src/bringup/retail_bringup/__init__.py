"""The retailbot CLI, the YAML launch-file launcher, node support (validated parameters) and the simulated store."""
