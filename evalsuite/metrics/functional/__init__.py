"""Pure metric math: arrays in, numbers out, no state and no I/O."""
