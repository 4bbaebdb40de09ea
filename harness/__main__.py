"""`python -m harness` (and `torchrun -m harness run ...`)."""

from harness.cli import main

main()
