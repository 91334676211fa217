"""retail_ui: the robot's touch screen and the staff console (one node, /ui/server)."""
