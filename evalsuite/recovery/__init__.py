"""Recovery by distillation: fine-tune an ablated UNet from the unablated one (BK-SDM's recipe).

``losses`` (pure functions), ``features`` (which stages feature KD compares, and the hooks),
``data`` (the ``TrainingData`` protocol and ``ImageFolder``), ``train`` (the loop),
``checkpoint`` (atomic, resumable checkpoints) and ``api`` (``Recovery``: key, cache, summary).
"""

from evalsuite.recovery.api import Recovery, RecoveryStopped, compact_curve
from evalsuite.recovery.data import ImageFolder, TrainingData, batch_indices, epoch_order
from evalsuite.recovery.features import StageMatch, capture, match_stages
from evalsuite.recovery.losses import (LossTerms, LossWeights, distillation_loss, feature_kd_loss,
                                       output_kd_loss, task_loss)
from evalsuite.recovery.settings import RecoverySettings

__all__ = ["ImageFolder", "LossTerms", "LossWeights", "Recovery", "RecoverySettings",
           "RecoveryStopped", "StageMatch", "TrainingData", "batch_indices", "capture",
           "compact_curve", "distillation_loss", "epoch_order", "feature_kd_loss", "match_stages",
           "output_kd_loss", "task_loss"]
