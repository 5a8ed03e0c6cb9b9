"""``python -m cxops.cli``: the ``cxops`` command without the installed script."""

from cxops.cli.main import app

app(prog_name="cxops")
