"""The file contract: the names of compiled programs' inputs and outputs, and every ``metadata_props`` key.

Everything onnxforge writes into or reads from a file's ``metadata_props`` is named here and only here, so
the compiler, the runtime, saving, the CLI and the exporters agree on one spelling (``tests/test_structure.py``
refuses an ``onnxforge.<key>`` string anywhere else). Program I/O names (what any onnxruntime driver binds):

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
``{"dims": [symbol, ...], "min": int | null, "message": str}`` and an optional ``"max": int`` (one symbol: its
size is at least ``min`` and at most ``max``; two:
their sizes are equal), each symbol a ``dim_param`` of the graph's inputs; and the run-time value checks
in ``metadata_props["onnxforge.value_checks"]``: a JSON list of ``{"input": name, "min": int, "max": int,
"message": str}`` (every element of that input in ``[min, max]``: an Embedding's ids).
"""
from __future__ import annotations

__all__ = ["LEARNING_RATE", "BATCH_DIM", "LOSS", "target", "sample_weight", "new_state", "sum_output",
           "KEY_PREFIX", "STATE_KEY", "IO_KEY", "PROGRAM_KEY", "DIM_CHECKS_KEY", "VALUE_CHECKS_KEY", "FORMAT_KEY",
           "INIT_MODEL_KEY", "INIT_FOR_KEY", "EXPORT_ID_KEY", "VERSION_KEY", "INPUT_LAYOUT_KEY", "DATA_FORMAT_KEY",
           "CLASS_NAMES_KEY", "LEARNING_RATE_KEY", "LEARNING_RATES_KEY", "WEIGHTS_KEY", "MODEL_CONFIG_KEY",
           "COMPILE_CONFIG_KEY", "SAVED_STATE_KEY", "DIGEST_KEY", "DIGEST_DOMAIN", "CHECKPOINT_KEY", "ARTIFACT_KEY", "METADATA_KEYS"]

#: The learning-rate input of a training step.
LEARNING_RATE = "learning_rate"
#: The symbolic name of the batch dimension.
BATCH_DIM = "batch"
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


# ------------------------------------------------------------------------------ metadata_props keys
#: Every onnxforge key starts with this (a loader refuses one given twice).
KEY_PREFIX = "onnxforge."

# Programs (compiler, runtime, eager, custom steps).
#: JSON list of ``[state input, state output]`` pairs.
STATE_KEY = "onnxforge.state"
#: JSON description of every input's and output's role (``inputs.data``, ``outputs.sums``, ...).
IO_KEY = "onnxforge.io"
#: The program's kind (``infer``, ``eval_step``, ``train_step``).
PROGRAM_KEY = "onnxforge.program"
#: JSON list of run-time dim checks (see the module docstring).
DIM_CHECKS_KEY = "onnxforge.dim_checks"
#: JSON list of run-time value checks (see the module docstring).
VALUE_CHECKS_KEY = "onnxforge.value_checks"

# Portable training files (``saving.portable``): a step graph and its initial-state companion.
#: The file's format, ``"<kind>/<version>"`` (``train_step/2``, ``initial_state/1``, ``onnxforge-model/2``).
FORMAT_KEY = "onnxforge.format"
#: Step graphs: the companion model's file name (same folder) whose outputs are the initial state.
INIT_MODEL_KEY = "onnxforge.init_model"
#: Companion models: the file name of the step graph they initialize.
INIT_FOR_KEY = "onnxforge.init_for"
#: Both files of a pair: one random id, so a companion left over from another export is detected.
EXPORT_ID_KEY = "onnxforge.export_id"

# Exports (``saving.export``).
#: The onnxforge version that wrote the file.
VERSION_KEY = "onnxforge.version"
#: JSON ``{input name: layout}``, e.g. ``{"image": "NHWC"}`` (Keras ``channels_last``).
INPUT_LAYOUT_KEY = "onnxforge.input_layout"
#: ``"channels_last"`` or ``"channels_first"``.
DATA_FORMAT_KEY = "onnxforge.data_format"
#: JSON list of class names, one per entry of the first output's last axis.
CLASS_NAMES_KEY = "onnxforge.class_names"
#: The optimizer's learning rate at export time (training exports; a hint, the input is required).
LEARNING_RATE_KEY = "onnxforge.learning_rate"
#: Custom training steps: JSON ``{learning-rate input: its value at export time}``, one per optimizer.
LEARNING_RATES_KEY = "onnxforge.learning_rates"
#: JSON list of the initializer names holding ``model.weights``, in that order (``load_weights`` reads it).
WEIGHTS_KEY = "onnxforge.weights"

# Whole-model files (``model.save`` / ``load_model``).
#: The model's Keras config (JSON).
MODEL_CONFIG_KEY = "onnxforge.model_config"
#: ``compile()``'s arguments (JSON).
COMPILE_CONFIG_KEY = "onnxforge.compile_config"
#: JSON object of the saved training state (optimizer slots, RNG, custom state).
SAVED_STATE_KEY = "onnxforge.saved_state"
#: SHA-256 digest of the file's content (``saving.integrity``); loaders of the current formats require it.
DIGEST_KEY = "onnxforge.digest"
#: The bytes the digest's hash starts with (its domain separator); bumped if what the digest covers ever
#: changes.
DIGEST_DOMAIN = b"onnxforge.digest/1\n"

# onnxruntime-training compatible artefacts (``exporters.ort_training_compat``).
#: A checkpoint: JSON ``{"requires_grad", "frozen_params", "optimizer_state"}``.
CHECKPOINT_KEY = "onnxforge.checkpoint"
#: The other artefacts: JSON description of the inputs' and outputs' roles.
ARTIFACT_KEY = "onnxforge.artifact"

#: Every key above (``onnxforge info`` and the loaders know no others).
METADATA_KEYS = frozenset(v for k, v in dict(globals()).items() if k.endswith("_KEY") and k != "KEY_PREFIX")
