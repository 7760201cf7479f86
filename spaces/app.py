"""DiffSeg30k demo Space: a thin shell over ``diffseg30k.demo`` (all UI logic lives there).

Detector: ``$DIFFSEG_CHECKPOINT`` (Hub model id or local folder), else the ``checkpoint/`` folder
bundled beside this file by ``diffseg30k push space --checkpoint DIR``. Runtime: the fastest installed
CPU runtime (``runtime="auto"``: ONNX Runtime int8/fp32, OpenVINO, else torch); the page says which.
"""

from pathlib import Path

from diffseg30k.demo import build_app, launch_kwargs

demo = build_app(app_dir=Path(__file__).resolve().parent, runtime="auto")

if __name__ == "__main__":
    demo.launch(**launch_kwargs())
