"""Kobuki-protocol base driver and simulator, store maps, costmaps, planning and guiding customers."""
