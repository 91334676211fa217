"""Perception fixtures: faces are encoded once per session (see perception_support)."""
from perception_support import (enrolment_encodings, face_model, gallery_key, probe_faces,  # noqa: F401
                                session_key)
