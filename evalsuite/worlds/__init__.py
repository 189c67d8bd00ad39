"""Procedurally generated worlds where the truth is known (see ``evalsuite.worlds.shapes``)."""
