"""Shared test setup: offline, isolated caches, quiet progress bars."""

from __future__ import annotations

import os
import tempfile

_ISOLATED = tempfile.mkdtemp(prefix="diffseg30k-tests-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", os.path.join(_ISOLATED, "hf_home"))
os.environ.setdefault("DIFFSEG30K_CACHE", os.path.join(_ISOLATED, "diffseg30k_cache"))
os.environ.setdefault("GRADIO_TEMP_DIR", os.path.join(_ISOLATED, "gradio"))
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
