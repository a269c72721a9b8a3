"""Zhongtai's benchmarks: each measures its own baseline in the same run."""
