"""Gradio widget of the DiffSeg30k evaluate module (the Space entry point of a Hub metric repo).

Built from evaluate's widget helpers (feature -> input-type inference, dataframe parsing, card
rendering); ``evaluate.utils.launch_gradio_widget`` itself still targets the removed ``gr.inputs``
API, so the interface is assembled here with the current Gradio components.
"""

import json
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
# Run as a script, this folder is sys.path[0] and its diffseg30k.py would shadow the diffseg30k package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]

import evaluate  # noqa: E402
from evaluate.utils import infer_gradio_input_types, parse_gradio_data, parse_readme  # noqa: E402
from evaluate.utils.gradio import json_to_string_type  # noqa: E402

EXAMPLE_REFERENCE = [[0, 0, 0, 0], [0, 3, 3, 0], [0, 3, 3, 0], [0, 0, 0, 0]]
EXAMPLE_PREDICTION = [[0, 0, 0, 0], [0, 3, 3, 0], [0, 3, 5, 0], [0, 0, 0, 0]]


def _jsonable(value):
    """NaN (undefined metric) -> None so the browser can parse the result."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value


def make_compute(module):
    """The widget callback: a dataframe of JSON label maps -> the metric dict."""
    names, types = zip(*module.features.items())
    input_types = infer_gradio_input_types(types)

    def compute(data):
        return _jsonable(module.compute(**parse_gradio_data(data, input_types)))

    return compute, list(names), input_types


def build_widget(module=None):
    """A gr.Interface over ``module`` (default: this folder's module)."""
    import gradio as gr

    module = module if module is not None else evaluate.load(str(HERE))
    compute, names, input_types = make_compute(module)
    example = [[json.dumps(EXAMPLE_PREDICTION), json.dumps(EXAMPLE_REFERENCE)]]
    return gr.Interface(
        fn=compute,
        inputs=gr.Dataframe(headers=names, column_count=len(names), row_count=1, value=example,
                            datatype=json_to_string_type(input_types),
                            label="label maps as JSON lists of rows, one pair per row"),
        outputs=gr.JSON(label=module.name),
        title=f"Metric: {module.name}",
        description=module.info.description,
        article=parse_readme(HERE / "README.md"),
    )


if __name__ == "__main__":
    build_widget().launch()
