"""r1chat: run DeepSeek-R1 distills locally, with their reasoning shown beside the answer."""

__version__ = "0.1.0"
