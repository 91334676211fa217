"""retail_demo: the simulated store day, a client of the robot (not part of its foundation)."""
