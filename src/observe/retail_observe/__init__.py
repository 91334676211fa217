"""retail_observe: Foxglove WebSocket server on the robot; MCAP record and replay of the ROS graph."""
