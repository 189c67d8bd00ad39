"""Feature extractors (Inception variants, CLIP), image sources, the on-disk feature cache and
the one-pass extraction shared by every distribution metric (FID, KID, CMMD)."""

from evalsuite.features.base import FeatureExtractor
from evalsuite.features.cache import FeatureCache, FeatureFile
from evalsuite.features.extract import Consumer, FeaturePlan, image_pass
from evalsuite.features.sources import ArraySource, FolderSource, ImageSource, StoreSource

__all__ = ["ArraySource", "Consumer", "FeatureCache", "FeatureExtractor", "FeatureFile", "FeaturePlan",
           "FolderSource", "ImageSource", "StoreSource", "image_pass"]
