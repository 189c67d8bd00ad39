"""Sample store: generated images on disk, written atomically, resumable."""

from evalsuite.samples.store import SampleStore, decode_png, encode_png

__all__ = ["SampleStore", "decode_png", "encode_png"]
