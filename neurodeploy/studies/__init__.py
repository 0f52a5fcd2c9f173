"""Studies: learning runs on the chip path (``chip_learning``); more move here as they are touched."""
