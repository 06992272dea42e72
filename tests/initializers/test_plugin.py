"""Third-party initializers registered through the `bench.initializers` entry-point group."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch

import initializers
from bench.models import MLPSpec
from initializers import registry
from initializers.registry import InitContext

PLUGIN_NAME = "plugin-example"
PLUGIN_MODULE = textwrap.dedent('''
    """A minimal initializer plugin: W = 0.5 · PyTorch's default, zero biases."""
    import torch

    from initializers import InitContext, InitResult, register
    from initializers.standard import torch_default


    @register("plugin-example", needs_teacher=False, compute="none",
              description="plugin test: half of PyTorch's default weights, zero biases")
    def half_default(ctx: InitContext) -> InitResult:
        params = torch_default(ctx.student, ctx.generators("student-init"))
        return InitResult({name: value * 0.5 if name.endswith("weight") else
                           torch.zeros_like(value) for name, value in params.items()})
''')


@pytest.fixture
def plugin_path(tmp_path, monkeypatch):
    """Install the plugin as an unpacked distribution on a temporary sys.path entry.

    The `*.dist-info` folder with `entry_points.txt` is what pip writes on install, so
    `importlib.metadata` finds the entry point exactly as for an installed package, offline.
    """
    (tmp_path / "bench_plugin_example").mkdir()
    (tmp_path / "bench_plugin_example" / "__init__.py").write_text(PLUGIN_MODULE)
    info = tmp_path / "bench_plugin_example-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: bench-plugin-example\n"
                                   "Version: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[bench.initializers]\nexample = bench_plugin_example\n")

    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    monkeypatch.delitem(sys.modules, "bench_plugin_example", raising=False)
    yield tmp_path
    sys.modules.pop("bench_plugin_example", None)


def test_plugin_listed_and_runnable(plugin_path, digits):
    """Check that available() lists the plugin and that it returns its documented weights."""
    available = initializers.available()
    assert PLUGIN_NAME in available
    assert not available[PLUGIN_NAME].needs_teacher

    seeds = (0, 1)
    student = MLPSpec(digits.spec.student_sizes)
    ctx = InitContext(
        student=student, teacher=MLPSpec(digits.spec.teacher_sizes), teacher_params=None,
        d1_classes=digits.spec.d1_classes, d1_train=digits.d1.train, d2_train=digits.d2.train,
        seed_indices=seeds, suite_seed=0, scenario="digits-subset")
    params = initializers.get(PLUGIN_NAME)(ctx).params
    default = initializers.get("uniform")(ctx).params
    for layer in range(student.num_layers):
        torch.testing.assert_close(params[student.weight(layer)],
                                   0.5 * default[student.weight(layer)], rtol=0, atol=0)
        assert (params[student.bias(layer)] == 0).all()


def test_plugin_shown_by_cli_list(plugin_path):
    """Check that `python -m bench list` shows the plugin with its description."""
    env = {**os.environ,
           "PYTHONPATH": os.pathsep.join([str(plugin_path), os.environ.get("PYTHONPATH", "")])}
    output = subprocess.run([sys.executable, "-m", "bench", "list"], capture_output=True,
                            text=True, env=env, check=True, timeout=120).stdout
    assert PLUGIN_NAME in output
    assert "half of PyTorch's default weights" in output
