"""What every benchmark records: the machine, the versions and the date."""

import datetime
import json
import os
import pathlib
import platform

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def machine():
    """Platform, CPU count and library versions, for the results files."""
    import keras
    import numpy as np
    import tensorflow as tf

    return {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        **cpu(),
        "cpu_count": os.cpu_count(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "numpy": np.__version__,
        "date": datetime.date.today().isoformat(),
    }


def cpu():
    """The CPU's model name and vector extensions (XNNPACK and oneDNN pick kernels by them)."""
    from kslim.deploy.latency import cpu_info

    model, flags = cpu_info()
    flags = set(flags.split())
    return {"cpu_model": model or "?",
            "simd": [f for f in ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_tile") if f in flags]}


def write(name, data):
    """Writes `results/<name>.json` (with machine info) and returns its path."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **data}, indent=1) + "\n")
    return path


def measured(name, runtime_s):
    """"Measured <date> on <CPU> (<vector extensions>), <n> CPU cores, TensorFlow <v>, Keras <v>; <t> min." for
    the markdown beside `results/<name>.json`, from the machine that file records."""
    m = json.loads((RESULTS / f"{name}.json").read_text())["machine"]
    return (f"Measured {m['date']} on {m['cpu_model']} ({', '.join(m['simd'])}), {m['cpu_count']} CPU cores, "
            f"TensorFlow {m['tensorflow']}, Keras {m['keras']}; {runtime_s / 60:.1f} min.")
