"""``python -m protege`` (and ``torchrun -m protege train ...``): the same as the ``protege`` command."""

from protege.cli import main

main()
