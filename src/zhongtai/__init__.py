"""Zhongtai (中台): one backend for every touchpoint of an omnichannel retail chain."""

__version__ = "0.1.0"
