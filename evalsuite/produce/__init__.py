"""Image producers and the one loop that stores what they make (``materialise``)."""

from evalsuite.produce.materialise import (ImageProducer, Materialised, Shard, chunks,
                                           materialise, missing_by_shard)
from evalsuite.produce.text_to_image import TextToImage, manifest_entries

__all__ = ["ImageProducer", "Materialised", "Shard", "TextToImage", "chunks",
           "manifest_entries", "materialise", "missing_by_shard"]
