"""The demo chain: a deterministic Shanghai retail chain to try, tour and benchmark Zhongtai."""

from zhongtai.demo.credentials import (
    DEFAULT_CREDENTIALS_PATH,
    demo_credentials,
    read_demo_credentials,
    write_demo_credentials,
)
from zhongtai.demo.generator import DEMO_PASSWORD, DemoChain, build_chain
from zhongtai.demo.loader import existing_demo_data, load_demo_chain

__all__ = [
    "DEFAULT_CREDENTIALS_PATH",
    "DEMO_PASSWORD",
    "DemoChain",
    "build_chain",
    "demo_credentials",
    "existing_demo_data",
    "load_demo_chain",
    "read_demo_credentials",
    "write_demo_credentials",
]
