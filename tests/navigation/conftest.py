"""Fixtures of the navigation tests (defined in nav_base_support): `base_sim` runs the simulated
base on a real pty, `driver` connects the real driver core over real pyserial."""
from nav_base_support import base_sim, driver  # noqa: F401 (fixtures)
