"""bench/train_configs.py -- the training configurations that bench/train-step,
bench/train-profile and bench/mpi-scaling share: for each, the bf-data and
bf-init arguments, the batch, the timed steps N (before STEPS_SCALE) and
train-step's goal against PyTorch; the warm-up steps W and weight decay the
benchmarks train with; and the commands as their reports print them.
"""

import os

WARMUP = 3   # steps before the timed ones (allocation, first touches)
WD = 0.01    # bf-ste-train --wd


def configs(text):
    """A fresh list of the configurations (callers add their own keys to the
    dicts); text is the file lm and lm256 are made from."""
    return [
        {"name": "grok", "goal": 3.0, "batch": 512, "steps": 20,
         "data": ["modarith", "--op", "mul", "--p", "97"],
         "init": ["--d", "128", "--layers", "2", "--heads", "4", "--ff", "512",
                  "--norm", "layer", "--act", "gelu", "--pos", "learned"]},
        {"name": "lm", "goal": 3.0, "batch": 32, "steps": 12,
         "data": ["text", "--file", text, "--ctx", "64", "--val-frac", "0.02"],
         "init": ["--d", "128", "--layers", "4", "--heads", "4", "--ff", "512",
                  "--norm", "rms", "--act", "swiglu", "--pos", "rope"]},
        {"name": "lm256", "goal": 3.0, "batch": 16, "steps": 6,
         "data": ["text", "--file", text, "--ctx", "128", "--val-frac", "0.02"],
         "init": ["--d", "256", "--layers", "4", "--heads", "8", "--ff", "1024",
                  "--norm", "rms", "--act", "swiglu", "--pos", "rope"]},
    ]


def commands(c, text):
    """How a configuration's model and data are made, for a report:
    "`bf-init ...`, `bf-data ...`", the text file by its base name."""
    data = " ".join(os.path.basename(a) if a == text else a for a in c["data"])
    return "`bf-init %s`, `bf-data %s`" % (" ".join(c["init"]), data)
