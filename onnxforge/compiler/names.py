"""The stable input and output names of compiled programs (what any onnxruntime driver binds).

========================  ======================================================================
name                      meaning
========================  ======================================================================
``<input name>``          a model input, as ``model.input_names`` (batch dimension ``"batch"``)
``<output name>``         a model output of the ``infer`` program, as ``model.output_names``
``target/<output>``       the labels of one output (int64 class ids for sparse crossentropy,
                          else float32 shaped like the output)
``sample_weight/<output>`` float32 ``(batch,)`` weight of each sample for that output
``<variable name>``       a Variable: layer weight (``dense/kernel``), BatchNorm statistic,
                          optimizer slot (``adam/dense_kernel_momentum``), step counter
                          (``adam/iteration``, int64 scalar) or RNG state (``seed_generator/state``,
                          int64 ``[seed, counter]``)
``<variable name>:new``   the variable's value after the step (state outputs)
``learning_rate``         float32 scalar fed each training step
``sums/<metric>/<state>`` float32 batch sums of a metric's state (``sums/loss/total``,
                          ``sums/loss/count``, ``sums/accuracy/total``, ``sums/auc/true_positives``)
========================  ======================================================================

Programs record the pairs of state inputs and outputs in ``metadata_props["onnxforge.state"]`` (a JSON
list of ``[input_name, output_name]``), the role of every input and output in
``metadata_props["onnxforge.io"]``, and the run-time size checks layers asked for (``ProgramRunner`` applies
them before each run) in ``metadata_props["onnxforge.dim_checks"]``: a JSON list of
``{"dims": [symbol, ...], "min": int | null, "message": str}`` (one symbol: its size is at least ``min``; two:
their sizes are equal), each symbol a ``dim_param`` of the graph's inputs; and the run-time value checks
in ``metadata_props["onnxforge.value_checks"]``: a JSON list of ``{"input": name, "min": int, "max": int,
"message": str}`` (every element of that input in ``[min, max]``: an Embedding's ids).
"""
from __future__ import annotations

__all__ = ["LEARNING_RATE", "BATCH_DIM", "STATE_KEY", "IO_KEY", "PROGRAM_KEY", "DIM_CHECKS_KEY", "VALUE_CHECKS_KEY",
           "target",
           "sample_weight", "new_state", "sum_output", "LOSS"]

#: The learning-rate input of a training step.
LEARNING_RATE = "learning_rate"
#: The symbolic name of the batch dimension.
BATCH_DIM = "batch"
#: ``metadata_props`` key holding the JSON list of ``[state input, state output]`` pairs.
STATE_KEY = "onnxforge.state"
#: ``metadata_props`` key holding the JSON description of every input's and output's role.
IO_KEY = "onnxforge.io"
#: ``metadata_props`` key holding the program's kind (``infer``, ``eval_step``, ``train_step``).
PROGRAM_KEY = "onnxforge.program"
#: ``metadata_props`` key holding the JSON list of run-time dim checks (see the module docstring).
DIM_CHECKS_KEY = "onnxforge.dim_checks"
#: ``metadata_props`` key holding the JSON list of run-time value checks (see the module docstring).
VALUE_CHECKS_KEY = "onnxforge.value_checks"
#: The name of the total-loss tracker (Keras's ``loss`` log key).
LOSS = "loss"


def target(output_name: str) -> str:
    return f"target/{output_name}"


def sample_weight(output_name: str) -> str:
    return f"sample_weight/{output_name}"


def new_state(input_name: str) -> str:
    return f"{input_name}:new"


def sum_output(metric_name: str, state_name: str) -> str:
    return f"sums/{metric_name}/{state_name}"
