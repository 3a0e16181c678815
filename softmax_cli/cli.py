"""The ``softmax`` command line: the subcommands registered on the app, in the order help lists them.

Each command lives in :mod:`softmax_cli.commands` (one module per family) and
takes its shared options as groups from :mod:`softmax_cli.options`; the app,
its parsing and its one place for errors are :mod:`softmax_cli.app`.
"""

from __future__ import annotations

from .app import SoftmaxCommand, app, run, with_quiet
from .commands import attention, calibration, compare, crossentropy, probs, ranking
from .options import shared_options

for command in (probs.probs, crossentropy.loss, crossentropy.grad, probs.jacobian, calibration.temperature_sweep,
                ranking.topk, attention.attention, compare.compare):
    app.command(cls=SoftmaxCommand)(with_quiet(shared_options(command)))


def main() -> None:
    """Console-script entry point."""
    run(app)
