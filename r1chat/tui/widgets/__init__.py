"""The chat's widgets, one file each."""
