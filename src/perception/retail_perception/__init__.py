"""Camera capture, face detection/tracking/recognition of consenting members and VIPs, customer events."""
