"""Shopping guides (导购): customer binding, share links, attribution, commission, tasks and
recommendations."""

from zhongtai.guides import handlers as _handlers  # noqa: F401  (registers event handlers)
from zhongtai.guides import membership as _membership  # noqa: F401  (registers overview)
