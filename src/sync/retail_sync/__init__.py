"""Store-and-forward outbox, uploader and downlink to the online platform, and the reference platform."""
